import pandas as pd
import pytest

from assay.data.fingerprint import snapshot_fingerprint
from assay.data.split import split_batches
from assay.data.store import BatchRecord
from assay.errors import SpecError


def _batch(source: str, rows: int, offset: int = 0, labelled: bool = True):
    record = BatchRecord(f"h-{source}", source, "sha", rows, labelled, "now")
    frame = pd.DataFrame(
        {
            "x": [float(i + offset) for i in range(rows)],
            "colour": ["red", "blue"] * (rows // 2),
            "y": (["yes", "no"] * (rows // 2)) if labelled else [None] * rows,
        }
    )
    return record, frame


@pytest.fixture
def spec(toy_spec):
    return toy_spec


def test_source_rule_takes_test_rows_from_matching_files(spec):
    parts = split_batches(
        [_batch("train.csv", 40), _batch("test.csv", 10, 100), _batch("u.csv", 6, 500, False)],
        spec,
    )
    sizes = {"train": 24, "valid": 8, "calibration": 8, "test": 10, "unlabelled": 6}
    assert parts.sizes() == sizes
    assert parts.test["x"].min() >= 100
    assert parts.unlabelled["x"].min() >= 500


def test_split_is_reproducible_and_seeded(spec):
    batches = [_batch("train.csv", 40), _batch("test.csv", 10, 100)]
    first, second = split_batches(batches, spec), split_batches(batches, spec)
    pd.testing.assert_frame_equal(first.valid, second.valid)
    reseeded = spec.model_copy(update={"split": spec.split.model_copy(update={"seed": 7})})
    assert not split_batches(batches, reseeded).valid.equals(first.valid)


def test_random_rule_holds_out_a_stratified_share(spec):
    rule = spec.split.model_copy(update={"rule": "random", "test_fraction": 0.2})
    parts = split_batches([_batch("all.csv", 100)], spec.model_copy(update={"split": rule}))
    assert len(parts.test) == 20
    assert parts.test["y"].value_counts().tolist() == [10, 10]


def test_source_rule_without_matching_batch_is_a_clear_error(spec):
    with pytest.raises(SpecError, match=r"test_sources \['test\*'\] matches no accepted"):
        split_batches([_batch("train.csv", 40)], spec)


def test_snapshot_fingerprint_depends_on_batches_and_spec_not_order():
    assert snapshot_fingerprint(["a", "b"], "s") == snapshot_fingerprint(["b", "a"], "s")
    assert snapshot_fingerprint(["a"], "s") != snapshot_fingerprint(["a", "b"], "s")
    assert snapshot_fingerprint(["a"], "s") != snapshot_fingerprint(["a"], "t")


def test_random_split_keeps_every_copy_of_a_row_on_one_side(spec):
    """Exact duplicates (a categorical-only dataset has many) never straddle train and test."""
    random = spec.model_copy(update={"split": spec.split.model_copy(update={"rule": "random"})})
    record, frame = _batch("all.csv", 200)
    frame["x"] = frame["x"] % 7  # 14 distinct rows, each about 14 times
    parts = split_batches([(record, frame)], random)
    seen = set(map(tuple, pd.concat([parts.train, parts.valid])[["x", "colour", "y"]].values))
    assert len(parts.test) > 0
    assert not any(tuple(row) in seen for row in parts.test[["x", "colour", "y"]].values)


def test_random_split_without_duplicates_is_the_plain_stratified_split(spec):
    from sklearn.model_selection import train_test_split

    random = spec.model_copy(update={"split": spec.split.model_copy(update={"rule": "random"})})
    record, frame = _batch("all.csv", 100)
    parts = split_batches([(record, frame)], random)
    _, test = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame["y"])
    pd.testing.assert_frame_equal(parts.test, test.reset_index(drop=True))


def test_calibration_rows_are_their_own_stratified_share_and_copies_stay_together(spec):
    """The conformal quantile's rows: out of training, validation and test, both classes in
    proportion, and a row with copies wholly on one side (a copy of a training row would be
    scored as if seen, and the quantile would come out optimistic)."""
    rule = spec.split.model_copy(update={"rule": "random", "calibration_fraction": 0.25})
    record, frame = _batch("all.csv", 400)
    frame["x"] = frame["x"] % 150  # 300 distinct rows, 100 of them twice
    parts = split_batches([(record, frame)], spec.model_copy(update={"split": rule}))
    columns = ["x", "colour", "y"]
    keys = {name: set(map(tuple, getattr(parts, name)[columns].values)) for name in parts.sizes()}
    assert keys["calibration"] and not keys["calibration"] & (keys["train"] | keys["valid"])
    assert not keys["calibration"] & keys["test"]
    assert sum(parts.sizes().values()) == 400
    share = (parts.calibration["y"] == "yes").mean()
    assert share == pytest.approx(0.5, abs=0.05)
    assert len(parts.calibration) == pytest.approx(0.25 * (400 - len(parts.test)), rel=0.1)


def test_calibration_rows_are_capped_and_the_rest_train(spec):
    rule = spec.split.model_copy(update={"rule": "random", "max_calibration_rows": 30})
    parts = split_batches([_batch("all.csv", 400)], spec.model_copy(update={"split": rule}))
    assert len(parts.calibration) == 30  # 0.2 of the 320 non-test rows would be 64
    assert len(parts.train) + len(parts.valid) == 320 - 30
