import json

import pandas as pd
import pytest

from assay.errors import SpecError
from assay.validation.check import check
from assay.validation.report import write_report
from assay.validation.suite import gx, load_suite, save_suite

E = gx.expectations


@pytest.fixture
def suite():
    return gx.ExpectationSuite(
        name="toy",
        expectations=[
            E.ExpectColumnValuesToBeInSet(column="colour", value_set=["red", "blue"], mostly=0.9),
            E.ExpectColumnValuesToBeBetween(
                column="x", min_value=0, max_value=10, severity="warning"
            ),
        ],
    )


def test_clean_frame_passes(suite):
    report = check(pd.DataFrame({"colour": ["red", "blue"], "x": [1.0, 2.0]}), suite)
    assert report.passed and report.reason.startswith("passed (2 expectations, 0 warnings)")


def test_warning_is_reported_but_does_not_block(suite):
    report = check(pd.DataFrame({"colour": ["red", "blue"], "x": [1.0, 99.0]}), suite)
    assert report.passed
    assert [o.column for o in report.warnings] == ["x"]
    assert "50.00% unexpected (e.g. 99.0)" in report.warnings[0].describe()


def test_critical_failure_blocks_with_a_one_line_reason(suite):
    frame = pd.DataFrame({"colour": ["red", "green", "mauve", "blue"], "x": [1.0] * 4})
    report = check(frame, suite)
    assert not report.passed
    assert report.reason == (
        "failed critical expectation: column 'colour' column_values_to_be_in_set: "
        "50.00% unexpected (e.g. 'green', 'mauve')"
    )


def test_missing_column_is_a_failure_not_a_crash(suite):
    report = check(pd.DataFrame({"x": [1.0]}), suite)
    assert not report.passed and "colour" in report.reason


def test_suite_round_trips_with_severity(tmp_path, suite):
    save_suite(suite, tmp_path / "s.json")
    loaded = load_suite(tmp_path / "s.json")
    assert [str(e.severity.value) for e in loaded.expectations] == ["critical", "warning"]


def test_bad_suite_files_name_the_file(tmp_path):
    with pytest.raises(SpecError, match=r"expectation suite not found .*suggest"):
        load_suite(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SpecError, match=r"bad\.json: not valid JSON"):
        load_suite(tmp_path / "bad.json")
    (tmp_path / "odd.json").write_text('{"expectations": []}')
    with pytest.raises(SpecError, match="not a Great Expectations suite"):
        load_suite(tmp_path / "odd.json")


def test_report_is_written_as_html_and_json(tmp_path, suite):
    report = check(pd.DataFrame({"colour": ["<b>x</b>"] * 3, "x": [1.0] * 3}), suite)
    page = write_report(report, tmp_path, "r", "Toy <check>")
    html = page.read_text()
    assert "REJECTED" in html and "&lt;b&gt;" in html and "<b>x</b>" not in html
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is False


def test_shipped_adult_suite_accepts_both_bundled_files(adult_spec, adult_suite):
    from assay.data.reader import read_table

    for path in adult_spec.bundled:
        assert check(read_table(path, adult_spec), adult_suite).passed, path


def test_the_reason_names_the_worst_critical_failure_first():
    """Not the first in suite order: a 0.00%-ish miss must not hide a 60% one."""
    suite = gx.ExpectationSuite(
        name="toy",
        expectations=[
            E.ExpectColumnValuesToNotBeNull(column="x", mostly=1.0, severity="critical"),
            E.ExpectColumnValuesToBeInSet(column="colour", value_set=["red"], severity="critical"),
        ],
    )
    frame = pd.DataFrame({"colour": ["red"] * 4 + ["mauve"] * 6, "x": [None] + [1.0] * 9})
    report = check(frame, suite)
    assert report.reason.startswith("failed critical expectation: ")
    assert "'colour'" in report.reason and "60.00% unexpected" in report.reason
    assert report.reason.endswith("(+1 more critical)")


def test_an_optional_label_is_checked_only_where_the_batch_has_it():
    suite = gx.ExpectationSuite(
        name="labels",
        expectations=[
            E.ExpectTableColumnsToMatchSet(column_set=["x", "y"]),
            E.ExpectColumnValuesToNotBeNull(column="y"),
        ],
    )
    unlabelled = pd.DataFrame({"x": [1.0, 2.0]})
    assert not check(unlabelled, suite).passed
    report = check(unlabelled, suite, optional=("y",))
    assert report.passed and len(report.outcomes) == 1
    assert not check(pd.DataFrame({"x": [1.0], "y": [None]}), suite, optional=("y",)).passed
    assert not check(pd.DataFrame({"z": [1.0]}), suite, optional=("y",)).passed
    assert suite.expectations[0].column_set == ["x", "y"]  # the suite itself is unchanged
