import gzip

import pandas as pd
import pytest

from assay.data.reader import detect_format, read_table
from assay.errors import ReadError
from tests.conftest import ROOT


def test_bundled_adult_files_read_through_the_same_reader(adult_spec):
    train = read_table(ROOT / "data" / "adult.data.gz", adult_spec)
    test = read_table(ROOT / "data" / "adult.test.gz", adult_spec)
    assert (len(train), len(test)) == (32561, 16281)
    # adult.test's trailing dots are mapped to the canonical labels, its comment line skipped
    assert set(test["income"]) == {"<=50K", ">50K"}
    assert test["age"].dtype == "float64"
    # '?' is a missing marker in both files
    assert train["workclass"].isna().sum() == 1836
    assert "?" not in set(train["occupation"].dropna())


def test_same_rows_in_csv_parquet_and_jsonl_read_alike(tmp_path, adult_spec, adult_lines):
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("\n".join(adult_lines[:50]) + "\n")
    frame = read_table(csv_path, adult_spec)
    frame.to_parquet(tmp_path / "rows.parquet", index=False)
    frame.to_json(tmp_path / "rows.jsonl", orient="records", lines=True)
    for other in ("rows.parquet", "rows.jsonl"):
        pd.testing.assert_frame_equal(read_table(tmp_path / other, adult_spec), frame)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.csv", "csv"), ("a.csv.gz", "csv"), ("a.parquet", "parquet"), ("a.jsonl.gz", "jsonl"),
     ("adult.data.gz", "csv")],
)  # fmt: skip
def test_detect_format(tmp_path, name, fmt):
    assert detect_format(tmp_path / name, "auto") == fmt


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "file is empty (0 bytes)"),
        (b"|only a comment\n", "file has no data rows"),
        (b"39, State-gov, 77516, Bachelors, 13, x, y, z, White, Male, 0, 0, 40, US, <=50K, 9\n",
         "malformed CSV: line 1 has 16 fields where source.names lists 15"),
        (b"39, a, 1, B, 13, x, y, z, W, M, 0, 0, 40, US, <=50K\n1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12"
         b", 13, 14, 15, 16\n", "malformed CSV: line 2 has 16 fields where source.names lists 15"),
        (b"39, a, 1, B, 13, x, y, z, W, M, 0, 0, 40, US, <=50K\n1, 2, 3\n",
         "malformed CSV: line 2 has 3 fields where source.names lists 15"),
        (b'39, "State-gov, 77516\n', "malformed CSV: line 1 has 2 fields where source.names lists 15"),
        ("39, Staté-gov, 1, B, 13, x, y, z, W, M, 0, 0, 40, US, <=50K\n".encode("latin-1"),
         "not valid UTF-8 text (invalid continuation byte"),
        (b"old, State-gov, 1, B, 13, x, y, z, W, M, 0, 0, 40, US, <=50K\n",
         "column 'age': 1 value(s) are not numbers ('old')"),
    ],
)  # fmt: skip
def test_bad_files_raise_one_line_reasons(tmp_path, adult_spec, content, reason):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ReadError) as err:
        read_table(path, adult_spec)
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_columns_are_named(tmp_path, adult_spec, adult_lines):
    frame = read_table(_csv(tmp_path, adult_lines[:5]), adult_spec)
    frame.drop(columns=["sex", "race"]).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(ReadError, match="missing column"):
        read_table(tmp_path / "x.parquet", adult_spec)
    frame.drop(columns=["income"]).to_parquet(tmp_path / "y.parquet")
    with pytest.raises(ReadError, match="label column 'income' is missing"):
        read_table(tmp_path / "y.parquet", adult_spec)


def test_unlabelled_batches_when_allowed(tmp_path, adult_spec, adult_lines):
    frame = read_table(_csv(tmp_path, adult_lines[:5]), adult_spec)
    frame.drop(columns=["income"]).to_parquet(tmp_path / "u.parquet")
    label = adult_spec.label.model_copy(update={"allow_unlabelled_batches": True})
    unlabelled = read_table(tmp_path / "u.parquet", adult_spec.model_copy(update={"label": label}))
    assert "income" not in unlabelled.columns and len(unlabelled) == 5


def test_nested_json_values_are_rejected(tmp_path, adult_spec, adult_lines):
    frame = read_table(_csv(tmp_path, adult_lines[:2]), adult_spec)
    frame["workclass"] = frame["workclass"].astype(object)
    frame.at[0, "workclass"] = {"deep": {"er": [1, 2]}}
    frame.to_json(tmp_path / "n.jsonl", orient="records", lines=True)
    with pytest.raises(ReadError, match="column 'workclass' holds nested values"):
        read_table(tmp_path / "n.jsonl", adult_spec)


def test_gzip_with_bad_bytes_is_a_read_error(tmp_path, adult_spec):
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(gzip.compress(b"39, a, 1\n")[:-6])
    with pytest.raises(ReadError):
        read_table(path, adult_spec)


def _csv(tmp_path, lines):
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines) + "\n")
    return path
