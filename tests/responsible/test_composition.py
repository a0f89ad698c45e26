"""The responsible steps as the benchmarks run them (`responsible_stage`, the composition the
flow runs as tasks): from a compressed model to a package that serves, with one conformal
quantile or one per group."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.data.split import Split
from assay.pipeline.compose import responsible_stage
from assay.serving.policy import GroupQuantiles, needs_review, prediction_sets
from assay.serving.predictor import Predictor
from tests.conftest import deploy_tiny_model, mixed_rows, mixed_spec_for


@pytest.fixture(scope="module")
def compressed(tmp_path_factory) -> Path:
    """One tiny compressed model for every test here (its inputs do not depend on the spec's
    fairness or uncertainty settings)."""
    folder = tmp_path_factory.mktemp("compressed")
    return deploy_tiny_model(mixed_spec_for(folder / "suite.json"), folder / "model")


def test_the_composed_steps_make_a_package_that_serves(tmp_path, mixed_spec, compressed):
    train = mixed_rows(300, 0)
    split = Split(train, mixed_rows(300, 2), mixed_rows(400, 1), train.iloc[:0], mixed_rows(300, 3))
    outcome = responsible_stage(split, mixed_spec, compressed, tmp_path / "package")

    package = Path(outcome.folder)
    files = {p.name for p in package.iterdir()}
    assert {"model.int8.onnx", "decision.json", "responsible.json", "conformal.json"} <= files
    assert json.loads((package / "conformal.json").read_text()) == outcome.conformal
    assert json.loads((package / "responsible.json").read_text())["mitigation"] == "none"
    assert outcome.calibration["ece_after"] < 0.2 and outcome.passed
    assert 0 < outcome.conformal["review_share"] < 1
    decided = Predictor.load(package).predict(mixed_rows(50, 3).drop(columns=["y"]))
    assert len(decided) == 50


def test_group_conditional_quantiles_ship_in_the_package_and_small_groups_fall_back(
    tmp_path, compressed
):
    spec = mixed_spec_for(
        tmp_path / "suite.json",
        sensitive_features=["colour"],
        uncertainty={"group_by": ["colour"], "min_group_rows": 50},
    )
    train, held = mixed_rows(300, 0), mixed_rows(400, 3)
    held = pd.concat([held[held["colour"] != "green"], held[held["colour"] == "green"][:20]])
    split = Split(train, mixed_rows(300, 2), mixed_rows(400, 1), train.iloc[:0], held)
    outcome = responsible_stage(split, spec, compressed, tmp_path / "package")

    conformal = outcome.conformal
    assert conformal["calibration_rows"] == len(held)
    assert set(conformal["group_qhats"]["qhats"]) == {"blue", "red"}
    assert any("use the overall quantile: green (20)" in note for note in outcome.notes)
    # every red row is positive: no threshold to fit for red, which keeps the plain one
    assert any("all one class keep the plain threshold: red" in n for n in outcome.notes)
    groups = conformal["groups"]["colour"]
    assert [g["group"] for g in groups] == ["blue", "green", "red"]
    assert sum(g["rows"] for g in groups) == 400
    predictor = Predictor.load(Path(outcome.folder))
    assert predictor.policy.group_qhats == GroupQuantiles(
        ["colour"], conformal["group_qhats"]["qhats"]
    )
    rows = mixed_rows(60, 5).drop(columns=["y"])
    review = predictor.predict(rows)["review"].to_numpy()
    p = predictor.probabilities(rows)
    cut = rows["colour"].map({**conformal["group_qhats"]["qhats"]}).fillna(conformal["qhat"])
    np.testing.assert_array_equal(review, needs_review(prediction_sets(p, cut.to_numpy(float))))


def test_too_few_calibration_rows_send_every_row_to_review_and_say_why(
    tmp_path, mixed_spec, compressed
):
    train = mixed_rows(300, 0)
    split = Split(train, mixed_rows(300, 2), mixed_rows(100, 1), train.iloc[:0], mixed_rows(6, 3))
    outcome = responsible_stage(split, mixed_spec, compressed, tmp_path / "package")
    assert outcome.conformal["qhat"] == 1.0 and outcome.conformal["review_share"] == 1.0
    assert any("only 6 calibration rows" in note for note in outcome.notes)


@pytest.mark.parametrize(
    ("public", "note"),
    [
        (["validation"], "fewer than 50 validation rows keep the plain threshold: green"),
        (["validation", "calibration"], None),
    ],
)
def test_under_privacy_the_mitigation_fits_on_every_public_held_out_row(
    tmp_path, compressed, public, note
):
    """Green has 10 validation rows and many calibration rows: with both splits public its
    threshold is fit on both; with validation alone it is too small to fit."""
    spec = mixed_spec_for(
        tmp_path / "suite.json",
        sensitive_features=["colour"],
        privacy={"epsilon": 3.0, "public": public},
    )
    valid = mixed_rows(300, 2)
    valid = pd.concat([valid[valid["colour"] != "green"], valid[valid["colour"] == "green"][:10]])
    train = mixed_rows(300, 0)
    split = Split(train, valid, mixed_rows(400, 1), train.iloc[:0], mixed_rows(400, 3))
    outcome = responsible_stage(split, spec, compressed, tmp_path / "package")
    small = [n for n in outcome.notes if "keep the plain threshold" in n and "fewer" in n]
    assert small == ([f"mitigation on colour: groups with {note}"] if note else [])
