import pandas as pd

from assay.config import GatesSpec, LeakageSpec
from assay.data.leakage import find_leakage
from assay.data.split import split_batches
from assay.data.store import BatchRecord


def _batch(source: str, xs: list[float], digest: str) -> tuple[BatchRecord, pd.DataFrame]:
    frame = pd.DataFrame(
        {
            "x": xs,
            "colour": ["red", "blue"] * (len(xs) // 2),
            "y": ["yes", "no"] * (len(xs) // 2),
        }
    )
    return BatchRecord(digest, source, "sha-" + digest, len(xs), True, "now"), frame


def test_clean_split_passes(toy_spec):
    batches = [
        _batch("train.csv", [float(i) for i in range(40)], "a" * 64),
        _batch("test.csv", [100.0 + i for i in range(10)], "b" * 64),
    ]
    report = find_leakage(batches, split_batches(batches, toy_spec), toy_spec)
    assert (report.leaked_rows, report.training_duplicates, report.passed) == (0, 0, True)
    assert report.reason.startswith("passed: 0 of 10 test rows")


def test_test_rows_repeated_in_training_fail_and_name_the_batches(toy_spec):
    """The re-ingest case: a test file's rows stored a second time, under a train-like name."""
    test_rows = [100.0 + i for i in range(10)]
    batches = [
        _batch("train.csv", [float(i) for i in range(40)], "a" * 64),
        _batch("test.csv", test_rows, "b" * 64),
        _batch("copy.csv", test_rows, "c" * 64),
    ]
    report = find_leakage(batches, split_batches(batches, toy_spec), toy_spec)
    assert report.leaked_rows == 10 and report.share == 1.0 and not report.passed
    assert {b["batch"] for b in report.batches} == {"b" * 64, "c" * 64}
    assert "10 of 10 test rows (100.00%)" in report.reason
    assert "bbbbbbbbbbbb (test.csv, 10)" in report.reason
    assert "gates.leakage.max_share" in report.reason


def test_a_tolerated_share_passes_and_duplicates_in_training_are_counted(toy_spec):
    spec = toy_spec.model_copy(update={"gates": GatesSpec(leakage=LeakageSpec(max_share=0.2))})
    batches = [
        _batch("train.csv", [float(i % 20) for i in range(40)], "a" * 64),
        _batch("test.csv", [0.0, 1.0] + [100.0 + i for i in range(8)], "b" * 64),
    ]
    report = find_leakage(batches, split_batches(batches, spec), spec)
    assert report.leaked_rows == 2 and report.passed
    assert report.training_duplicates > 0
