from assay.data.reader import read_table
from assay.validation.check import check
from assay.validation.suggest import suggest


def test_suggested_suite_passes_its_reference_and_catches_new_categories(
    tmp_path, adult_spec, adult_lines
):
    path = tmp_path / "ref.csv"
    path.write_text("\n".join(adult_lines) + "\n")
    reference = read_table(path, adult_spec)
    suite = suggest(reference, adult_spec)
    kinds = {
        (e.expectation_type, e.column if hasattr(e, "column") else None) for e in suite.expectations
    }
    assert ("expect_column_values_to_be_in_set", "workclass") in kinds
    assert ("expect_column_values_to_be_between", "age") in kinds
    assert ("expect_column_values_to_not_be_null", "income") in kinds
    assert check(reference, suite).passed
    changed = reference.copy()
    changed.loc[: len(changed) // 10, "workclass"] = "Robot"
    report = check(changed, suite)
    assert not report.passed and "'workclass'" in report.reason and "'Robot'" in report.reason


def test_suggest_marks_the_suite_as_a_draft(tmp_path, adult_spec, adult_lines):
    path = tmp_path / "ref.csv"
    path.write_text("\n".join(adult_lines[:50]) + "\n")
    suite = suggest(read_table(path, adult_spec), adult_spec)
    assert suite.meta["assay"]["status"].startswith("draft")
    assert suite.meta["assay"]["reference_rows"] == 50


def test_a_suggested_suite_accepts_its_reference_with_unlabelled_rows(
    tmp_path, adult_spec, adult_lines
):
    """16% of the reference's rows have no label: the draft must not quarantine its own file."""
    path = tmp_path / "ref.csv"
    path.write_text("\n".join(adult_lines) + "\n")
    reference = read_table(path, adult_spec)
    reference.loc[reference.index[:64], "income"] = None
    suite = suggest(reference, adult_spec)
    assert check(reference, suite).passed
    [label_nulls] = [
        e for e in suite.expectations
        if e.expectation_type == "expect_column_values_to_not_be_null" and e.column == "income"
    ]  # fmt: skip
    assert 0.8 < label_nulls.mostly < 0.84
    unlabelled = reference.copy()
    unlabelled.loc[unlabelled.index[:200], "income"] = None  # half of the rows now
    assert not check(unlabelled, suite).passed


def test_ranges_of_a_column_never_negative_stay_non_negative(tmp_path, adult_spec, adult_lines):
    path = tmp_path / "ref.csv"
    path.write_text("\n".join(adult_lines) + "\n")
    suite = suggest(read_table(path, adult_spec), adult_spec)
    ranges = {
        e.column: e.min_value
        for e in suite.expectations
        if e.expectation_type == "expect_column_values_to_be_between"
    }
    assert ranges["capital_gain"] == 0.0 and ranges["capital_loss"] == 0.0
    assert all(low >= 0 for low in ranges.values())


def test_suggest_covers_datetime_parts_derived_columns_and_attributes(tmp_path):
    """The suite checks the batch as it is stored: a datetime's parts, derived columns and
    fairness-only attributes, not the raw columns they came from."""
    import yaml

    from assay.config import load_spec

    raw = {
        "name": "shapes",
        "columns": {"at": {"type": "datetime", "features": ["hour"]}, "n": {"type": "numeric"}},
        "derive": {"n_band": {"bins": {"column": "n", "edges": [5]}}},
        "fairness": {"attributes": {"group": {"merge": {"rare": ["c", "d"]}}}},
        "sensitive_features": ["group"],
        "label": {"column": "y", "positive": "yes", "negative": "no"},
        "split": {"rule": "random"},
        "expectations": "s.json",
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    spec = load_spec(tmp_path / "s.yaml")
    rows = "at,n,group,y\n" + "".join(
        f"2024-01-0{i % 9 + 1}T{i % 24:02d}:00,{i % 10},{'abcd'[i % 4]},{'yes' if i % 3 else 'no'}\n"
        for i in range(60)
    )
    (tmp_path / "rows.csv").write_text(rows)
    reference = read_table(tmp_path / "rows.csv", spec)
    suite = suggest(reference, spec)
    columns = {getattr(e, "column", None) for e in suite.expectations}
    assert {"at_hour", "n", "n_band", "group", "y"} <= columns and "at" not in columns
    sets = {e.column: e.value_set for e in suite.expectations if hasattr(e, "value_set")}
    assert sorted(sets["group"]) == ["a", "b", "rare"]
    assert check(reference, suite).passed
