"""The responsible steps as the benchmarks run them (`responsible_stage`, the composition the
flow runs as tasks): from a compressed model to a package that serves."""

from __future__ import annotations

import json
from pathlib import Path

from assay.data.split import Split
from assay.pipeline.compose import responsible_stage
from assay.serving.predictor import Predictor
from tests.conftest import deploy_tiny_model, mixed_rows


def test_the_composed_steps_make_a_package_that_serves(tmp_path, mixed_spec):
    compressed = deploy_tiny_model(mixed_spec, tmp_path / "compressed")
    train = mixed_rows(300, 0)
    split = Split(train, mixed_rows(300, 2), mixed_rows(400, 1), train.iloc[:0])
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
