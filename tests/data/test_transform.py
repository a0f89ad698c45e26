"""The spec features that turn a file's cells into a batch: filters, label values, renames and
repeated headers, malformed lines, code tables, datetimes, derived columns and fairness-only
attributes. Each is read through the real reader from a file written here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from assay.config import load_spec
from assay.data.reader import read_batch, read_table
from assay.errors import ReadError, SpecError

BASE = {
    "name": "toy",
    "columns": {
        "age": {"type": "numeric"},
        "kind": {"type": "categorical"},
    },
    "label": {"column": "y", "positive": "yes", "negative": "no"},
    "split": {"rule": "random"},
    "expectations": "suite.json",
}


def spec_at(tmp_path: Path, **changes):
    raw = {**BASE, **changes}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_spec(path)


def write(tmp_path: Path, text: str, name: str = "rows.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


ROWS = "age,kind,y\n30,a,yes\n45,b,no\n,c,no\n70,a,maybe\n"


# Filters and label values


def test_filter_keeps_matching_rows_and_counts_the_rest(tmp_path):
    spec = spec_at(
        tmp_path,
        source={"filter": {"all": [{"column": "age", "between": [18, 60]},
                                   {"column": "kind", "not_in": ["c"]}]}},
        label={**BASE["label"], "other": "drop"},
    )  # fmt: skip
    read = read_batch(write(tmp_path, ROWS), spec)
    assert read.frame["age"].tolist() == [30, 45]
    assert read.counts.filtered == 2  # the missing age and the 70 (the 'maybe' label) row
    assert read.counts.dropped_labels == 0


def test_filter_combinators_and_null_tests(tmp_path):
    spec = spec_at(
        tmp_path,
        source={"filter": {"any": [{"column": "age", "is_null": True},
                                   {"not": {"column": "kind", "in": ["a", "b"]}}]}},
    )  # fmt: skip
    frame = read_table(write(tmp_path, ROWS.replace("70,a,maybe", "70,d,yes")), spec)
    assert frame["kind"].tolist() == ["c", "d"]


def test_filter_on_a_column_the_model_does_not_use(tmp_path):
    spec = spec_at(tmp_path, source={"filter": {"column": "site", "equals": 2}})
    frame = read_table(write(tmp_path, "age,kind,site,y\n1,a,2.0,yes\n2,b,3,no\n"), spec)
    assert frame["age"].tolist() == [1] and "site" not in frame.columns


def test_filter_range_on_text_names_the_column(tmp_path):
    spec = spec_at(tmp_path, source={"filter": {"column": "kind", "min": 3}})
    with pytest.raises(ReadError, match=r"source.filter: column 'kind': .* not numbers"):
        read_table(write(tmp_path, ROWS), spec)


def test_filter_that_leaves_nothing_is_an_error(tmp_path):
    spec = spec_at(tmp_path, source={"filter": {"column": "kind", "equals": "zzz"}})
    with pytest.raises(ReadError, match=r"no rows left of 4: 4 row\(s\) left out by source.filter"):
        read_table(write(tmp_path, ROWS), spec)


def test_label_outside_both_classes_is_an_error_by_default(tmp_path):
    with pytest.raises(ReadError, match=r"neither 'yes' nor 'no' \('maybe'\), first in data row 4"):
        read_table(write(tmp_path, ROWS), spec_at(tmp_path))


def test_label_values_select_two_classes_from_many(tmp_path):
    label = {
        **BASE["label"],
        "values": {"yes": ["sport.hockey", "sport.golf"], "no": ["politics"]},
        "other": "drop",
    }
    text = "age,kind,y\n1,a,sport.hockey\n2,a,politics\n3,a,sport.golf\n4,a,cooking\n5,a,\n"
    read = read_batch(write(tmp_path, text), spec_at(tmp_path, label=label))
    assert read.frame["y"].tolist()[:3] == ["yes", "no", "yes"]
    assert read.frame["y"].isna().sum() == 1  # unlabelled rows stay (pretraining uses them)
    assert read.counts.dropped_labels == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"source": {"filter": {"column": "age"}}}, "needs exactly one test"),
        ({"source": {"filter": {"column": "age", "min": 1, "max": 3}}}, "found 2"),
        ({"source": {"filter": {"all": []}}}, "at least one predicate"),
        ({"source": {"filter": {"equals": 3}}}, "a test needs `column`"),
        ({"source": {"filter": {"column": "a", "between": [3, 1]}}}, "low is above high"),
        ({"source": {"filter": {"column": "a", "eval": "1"}}}, "source.filter.eval: unknown key"),
        ({"label": {**BASE["label"], "values": {"maybe": ["x"]}}}, "values keys must be"),
        ({"label": {**BASE["label"], "values": {"yes": ["x"], "no": ["x"]}}}, "under both"),
        ({"source": {"max_bad_lines": 2.5}}, "a count must be a whole number"),
        ({"source": {"rename": {"a": "age", "b": "age"}}}, "rename maps several columns"),
    ],
)
def test_source_and_label_errors_name_the_key(tmp_path, changes, message):
    with pytest.raises(SpecError, match=r"spec\.yaml: ") as err:
        spec_at(tmp_path, **changes)
    assert message in str(err.value)


# Headers


def test_rename_maps_header_names(tmp_path):
    spec = spec_at(tmp_path, source={"rename": {"Age (years)": "age", "Kind": "kind"}})
    frame = read_table(write(tmp_path, "Age (years),Kind,y\n30,a,yes\n"), spec)
    assert list(frame.columns) == ["age", "kind", "y"]


def test_repeated_header_is_an_error_naming_the_positions(tmp_path):
    path = write(tmp_path, "age,kind,age,y\n30,a,31,yes\n")
    with pytest.raises(ReadError, match=r"names column 'age' more than once \(positions 1, 3\)"):
        read_table(path, spec_at(tmp_path))


@pytest.mark.parametrize(("policy", "age"), [("first", 30.0), ("last", 31.0), ("suffix", 30.0)])
def test_repeated_header_policies(tmp_path, policy, age):
    spec = spec_at(tmp_path, source={"repeated_headers": policy})
    frame = read_table(write(tmp_path, "age,kind,age,y\n30,a,31,yes\n"), spec)
    assert frame["age"].tolist() == [age]


def test_suffixed_copy_can_be_renamed_into_use(tmp_path):
    spec = spec_at(
        tmp_path,
        source={"repeated_headers": "suffix", "rename": {"age.1": "age2"}},
        columns={**BASE["columns"], "age2": {"type": "numeric"}},
    )
    frame = read_table(write(tmp_path, "age,kind,age,y\n30,a,31,yes\n"), spec)
    assert frame["age2"].tolist() == [31.0]


# Malformed lines


BROKEN = 'age,kind,y\n30,a,yes\n45,b\n,no\n50,a,no\n60,"b, c",yes\n'


def test_broken_row_is_an_error_naming_its_line_by_default(tmp_path):
    with pytest.raises(ReadError, match="line 3 has 2 fields where the header has 3"):
        read_table(write(tmp_path, BROKEN), spec_at(tmp_path))


def test_skipped_lines_are_kept_byte_for_byte(tmp_path):
    spec = spec_at(tmp_path, source={"bad_lines": "skip", "max_bad_lines": 2})
    text = BROKEN.replace("\n", "\r\n")
    read = read_batch(write(tmp_path, text), spec)
    assert read.frame["age"].tolist() == [30, 50, 60]
    assert read.bad_lines.lines == [3, 4]
    assert read.bad_lines.content() == b"45,b\r\n,no\r\n"


def test_too_many_bad_lines_refuse_the_file(tmp_path):
    spec = spec_at(tmp_path, source={"bad_lines": "skip", "max_bad_lines": 0.2})
    with pytest.raises(
        ReadError, match=r"2 of 5 records .* more than source.max_bad_lines \(0.2\)"
    ):
        read_table(write(tmp_path, BROKEN), spec)


def test_quoted_newlines_are_not_bad_lines(tmp_path):
    spec = spec_at(tmp_path, columns={"age": {"type": "numeric"}, "kind": {"type": "text"}})
    frame = read_table(write(tmp_path, 'age,kind,y\n30,"two\nlines",yes\n'), spec)
    assert frame["kind"].tolist() == ["two\nlines"]


# Code tables, datetimes, derived columns


def test_code_table_from_a_json_file(tmp_path):
    (tmp_path / "codes.json").write_text(json.dumps({"a": "apple", "b": "banana"}))
    spec = spec_at(tmp_path, columns={**BASE["columns"], "kind": {"type": "categorical",
                                                                 "values": "codes.json"}})  # fmt: skip
    frame = read_table(write(tmp_path, "age,kind,y\n1,a,yes\n2,b,no\n3,z,no\n"), spec)
    assert frame["kind"].tolist() == ["apple", "banana", "z"]


def test_missing_code_table_names_the_file(tmp_path):
    with pytest.raises(SpecError, match=r"code table .*nope\.json not found"):
        spec_at(tmp_path, columns={"kind": {"type": "categorical", "values": "nope.json"}})


def test_datetime_parts_in_the_stated_timezone(tmp_path):
    spec = spec_at(
        tmp_path,
        columns={
            "at": {"type": "datetime", "timezone": "Europe/Berlin",
                   "features": ["hour", "weekday", "month", "day_of_year", "elapsed_days"],
                   "reference": "2024-01-01"},
            "kind": {"type": "categorical"},
        },
    )  # fmt: skip
    frame = read_table(write(tmp_path, "at,kind,y\n2024-01-02 23:30,a,yes\n,c,no\n"), spec)
    assert frame["at_hour"].iloc[0] == 23  # no offset: a Berlin wall-clock time
    assert frame["at_weekday"].iloc[0] == 1  # a Tuesday
    assert frame["at_elapsed_days"].iloc[0] == pytest.approx(1 + 23.5 / 24)
    assert frame["at_hour"].isna().iloc[1]
    assert spec.feature_columns[:2] == ["at_hour", "at_weekday"]
    text = "at,kind,y\n2024-07-01T12:00:00+00:00,b,no\n2024-12-31T12:00:00-05:00,b,no\n"
    frame = read_table(write(tmp_path, text), spec)
    assert frame["at_hour"].tolist() == [14, 18]  # converted to Berlin, summer and winter
    assert frame["at_month"].tolist() == [7, 12]
    assert frame["at_day_of_year"].tolist() == [183, 366]
    mixed = "at,kind,y\n2024-07-01T12:00:00+00:00,b,no\n2024-12-31 12:00,b,no\n"
    with pytest.raises(ReadError, match="mixes timestamps with and without a UTC offset"):
        read_table(write(tmp_path, mixed), spec)


def test_datetime_with_a_format_and_bad_values(tmp_path):
    spec = spec_at(
        tmp_path,
        columns={"at": {"type": "datetime", "format": "%d/%m/%Y %H:%M", "features": ["hour"]},
                 "kind": {"type": "categorical"}},
    )  # fmt: skip
    frame = read_table(write(tmp_path, "at,kind,y\n02/01/2024 07:15,a,yes\n"), spec)
    assert frame["at_hour"].tolist() == [7]
    with pytest.raises(ReadError, match=r"column 'at': 1 value\(s\) are not datetimes in format"):
        read_table(write(tmp_path, "at,kind,y\n2024-01-02,a,yes\n"), spec)


def test_derived_ratio_difference_and_bins(tmp_path):
    spec = spec_at(
        tmp_path,
        derive={
            "per_unit": {"ratio": ["age", "units"]},
            "gap": {"difference": ["age", "units"]},
            "age_band": {"bins": {"column": "age", "edges": [18, 40, 65]}},
        },
    )
    frame = read_table(write(tmp_path, "age,kind,units,y\n30,a,3,yes\n70,b,0,no\n10,a,,no\n"), spec)
    assert frame["per_unit"].tolist()[0] == 10 and frame["per_unit"].isna().tolist()[1:] == [
        True,
        True,
    ]
    assert frame["gap"].tolist()[:2] == [27, 70]
    assert frame["age_band"].tolist() == ["18-40", "65+", "<18"]
    assert spec.features["age_band"] == "categorical" and "units" not in spec.feature_columns


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"derive": {"x": {"ratio": ["age", "kind"]}}}, "derive.x: 'kind' is categorical"),
        ({"derive": {"x": {"ratio": ["a", "b"], "difference": ["a", "b"]}}}, "exactly one of"),
        ({"derive": {"age": {"difference": ["a", "b"]}}}, "derive: 'age' is already"),
        ({"derive": {"b": {"bins": {"column": "age", "edges": [3, 1]}}}}, "strictly ascending"),
        ({"columns": {"kind": {"type": "numeric", "values": {"a": "b"}}}}, "only applies to"),
        (
            {"columns": {"kind": {"type": "numeric", "format": "%Y"}}},
            "['format'] only apply to datetime",
        ),
        ({"columns": {"at": {"type": "datetime", "features": ["elapsed_days"]}}}, "reference"),
    ],
)
def test_column_and_derive_errors_name_the_key(tmp_path, changes, message):
    with pytest.raises(SpecError) as err:
        spec_at(tmp_path, **changes)
    assert message in str(err.value)


# Fairness attributes


def test_fairness_only_attribute_with_bins_is_kept_but_not_a_model_input(tmp_path):
    spec = spec_at(
        tmp_path,
        columns={"kind": {"type": "categorical"}},
        fairness={"attributes": {"age_band": {"column": "age", "bins": [30, 60]},
                                 "sex": {"merge": {"other": ["x", "unknown"]}}}},
        sensitive_features=["age_band", "sex"],
    )  # fmt: skip
    text = "age,kind,sex,y\n25,a,f,yes\n45,b,x,no\n61,a,unknown,no\n"
    frame = read_table(write(tmp_path, text), spec)
    assert spec.feature_columns == ["kind"]
    assert frame["age_band"].tolist() == ["<30", "30-60", "60+"]
    assert frame["sex"].tolist() == ["f", "other", "other"]
    assert list(frame.columns) == ["kind", "age_band", "sex", "y"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sensitive_features": ["age"]}, "'age' is numeric, which makes one group per value"),
        ({"fairness": {"attributes": {"kind": {"merge": {"x": ["a"]}}}}}, "is already"),
        ({"fairness": {"attributes": {"g": {"column": "kind", "bins": [1]}}}}, "bins need a"),
        ({"fairness": {"attributes": {"g": {"bins": [1], "merge": {"a": ["b"]}}}}}, "not both"),
        ({"fairness": {"attributes": {"g": {"bins": [1], "labels": ["a"]}}}}, "labels needs 2"),
    ],
)
def test_attribute_errors_name_the_key(tmp_path, changes, message):
    with pytest.raises(SpecError) as err:
        spec_at(tmp_path, **changes)
    assert message in str(err.value)


def test_headerless_space_delimited_file(tmp_path):
    spec = spec_at(tmp_path, source={"header": False, "delimiter": " ",
                                     "names": ["age", "kind", "y"]})  # fmt: skip
    frame = read_table(write(tmp_path, "30 a yes\n45 b no\n"), spec)
    assert frame["kind"].tolist() == ["a", "b"]


# Cells that arrive as numbers


def test_numbers_read_as_numbers_equal_numbers_read_as_text(tmp_path):
    from assay.data.transform import to_batch

    spec = spec_at(tmp_path)
    frame = pd.DataFrame({"age": [30, 45, None, 70.5], "kind": list("abca"), "y": ["no"] * 4})
    as_text = frame.astype({"age": "string"})
    numbers, _ = to_batch(frame, spec)
    texts, _ = to_batch(as_text, spec)
    pd.testing.assert_frame_equal(numbers, texts)
    assert numbers["age"].dtype == "float64"


def test_a_numeric_missing_marker_still_applies_to_numbers(tmp_path):
    from assay.data.transform import to_batch

    spec = spec_at(tmp_path, source={"missing_values": ["", "-1"]})
    frame = pd.DataFrame({"age": [30, -1, 45], "kind": list("abc"), "y": ["no"] * 3})
    batch, _ = to_batch(frame, spec)
    assert batch["age"].isna().tolist() == [False, True, False]
