"""The pure parts of the pipeline and scaling benchmarks."""

from __future__ import annotations

import pytest

from assay.data.reader import read_table
from assay.validation.check import check
from bench.pipeline import busy_seconds
from bench.scaling import FILE_ROWS, land, resample


@pytest.mark.parametrize(
    ("intervals", "expected"),
    [
        ([], 0.0),
        ([(0, 2), (5, 6)], 3.0),
        ([(0, 4), (1, 2), (3, 6)], 6.0),  # overlapping stages count once
        ([(3, 6), (0, 4)], 6.0),
    ],
)
def test_busy_seconds_is_the_union_of_stage_intervals(intervals, expected):
    assert busy_seconds(intervals) == expected


def test_resampled_rows_land_as_files_the_suite_accepts(adult_spec, adult_suite, tmp_path):
    source = read_table(adult_spec.bundled[0], adult_spec)
    rows = FILE_ROWS + 500
    frame = resample(source, adult_spec, rows, seed=1)
    assert len(frame) == rows and not frame.equals(source.iloc[:rows])
    files = land(frame, adult_spec, tmp_path / "landed")
    assert [p.name for p in files] == ["batch-000.csv", "batch-001.csv"]
    back = read_table(files[1], adult_spec)
    assert len(back) == 500
    assert back["age"].between(source["age"].min(), source["age"].max()).all()
    assert back["age"].isna().sum() == frame["age"].iloc[FILE_ROWS:].isna().sum()
    assert check(back, adult_suite).passed
