"""Checking new rows against a model package, and the retraining policy."""

from __future__ import annotations

import json

import pytest

from assay.data.store import BatchStore
from assay.monitoring.check import Reference, check_rows, reference_package
from assay.monitoring.policy import LastTraining, new_batches, retrain_reason
from assay.serving.layout import PROFILE_FILE
from assay.serving.predictor import Predictor
from assay.serving.profile import build_profile
from tests.conftest import deploy_tiny_model, mixed_rows, mixed_spec_for


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """The tiny model with what the responsible stage adds: a report and a reference profile."""
    spec = mixed_spec_for(
        tmp_path_factory.mktemp("spec") / "suite.json", monitoring={"min_rows": 100}
    )
    folder = deploy_tiny_model(spec, tmp_path_factory.mktemp("package"))
    reference = mixed_rows(1000, 1)
    scores = Predictor.load(folder).probabilities(reference)
    build_profile(reference, spec, scores).save(folder / PROFILE_FILE)
    report = {"mitigation": "none", "tradeoff": [{"option": "none", "accuracy": 0.95}]}
    (folder / "responsible.json").write_text(json.dumps(report), encoding="utf-8")
    return spec, Reference(folder, "test package")


def test_rows_like_the_reference_raise_nothing(package):
    spec, reference = package
    found = check_rows(mixed_rows(500, 2), spec, reference)
    assert not found.detected, found.reason
    assert found.reason.startswith("against test package: no drift")
    assert found.live is not None and found.live.rows == 500 and not found.live.degraded


def test_shifted_inputs_and_broken_labels_are_both_found(package):
    spec, reference = package
    rows = mixed_rows(500, 3)
    rows["x"] = rows["x"] + 3  # more rows cross x > 0.8, so the scores move too
    rows["y"] = "no"  # and the labels no longer follow the rule the model learned
    found = check_rows(rows, spec, reference)
    assert found.detected
    assert {"x", "prediction"} <= set(found.drift.drifted)
    assert found.live.degraded
    metrics = found.metrics()
    assert metrics["drift.detected"] == 1.0 and metrics["drift.psi.x"] > 0.2
    assert metrics["live.accuracy"] < 0.9


def test_unlabelled_rows_are_checked_for_drift_only(package):
    spec, reference = package
    rows = mixed_rows(300, 4).drop(columns=["y"])
    found = check_rows(rows, spec, reference)
    assert found.live is None and not found.detected


def test_there_is_no_reference_before_the_first_training(home, mixed_spec):
    assert reference_package(home, mixed_spec) is None


def test_the_last_training_is_the_reference_until_there_is_a_champion(home, mixed_spec, package):
    _, reference = package
    LastTraining("f" * 64, ("a",), 10, str(reference.package)).save(home.last_training)
    found = reference_package(home, mixed_spec)
    assert found.package == reference.package
    assert found.label == "last training ffffffffffff (not champion)"


def test_new_batches_are_those_the_last_training_did_not_see(home, tmp_path):
    store = BatchStore(home.batches)
    first_file, second_file = tmp_path / "a.csv", tmp_path / "b.csv"
    first_file.write_text("a\n")
    second_file.write_text("b\n")
    first = store.put(mixed_rows(10, 0), source=first_file, labelled=True, warnings=[]).record
    second = store.put(mixed_rows(20, 1), source=second_file, labelled=True, warnings=[]).record
    assert {r.hash for r in new_batches(store, None)} == {first.hash, second.hash}
    last = LastTraining("f" * 64, (first.hash,), 10, "package")
    last.save(home.last_training)
    assert LastTraining.load(home.last_training) == last
    assert [r.hash for r in new_batches(store, last)] == [second.hash]


@pytest.mark.parametrize(
    ("rows", "drifted", "on_drift", "expected"),
    [
        (10_000, False, True, "10,000 rows accepted since the last training (at least 10,000)"),
        (9_999, False, True, None),
        (500, True, True, "drift in a new batch (500 rows since the last training)"),
        (500, True, False, None),
    ],
)
def test_retrain_policy(adult_spec, rows, drifted, on_drift, expected):
    spec = adult_spec.model_copy(
        update={
            "monitoring": adult_spec.monitoring.model_copy(update={"retrain_on_drift": on_drift})
        }
    )
    assert retrain_reason(rows, drifted, spec) == expected
