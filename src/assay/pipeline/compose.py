"""The one composition of the responsible steps, for the flow and the benchmarks alike: the
flow hands it a function that submits each step as a Prefect task (and gets futures back, so
the independent steps run side by side), `responsible_stage` one that calls the step's library
function from the stage table in turn."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from assay.config import Spec
from assay.data.split import Split
from assay.pipeline.stages import STAGES
from assay.responsible.stage import ResponsibleOutcome

T = TypeVar("T")


def responsible_steps(run: Callable[..., T], compressed: object) -> T:
    """`run(name, *inputs)` runs step `name` on what the steps before it gave. Calibration
    scores every split once; conformal review, fairness and explanations read those scores
    side by side; the package gathers them."""
    calibration = run("calibrate", compressed)
    conformal = run("conformal", calibration)
    fairness = run("fairness", calibration)
    explanations = run("explain", compressed, calibration)
    return run("responsible", compressed, calibration, conformal, fairness, explanations)


def responsible_stage(
    split: Split, spec: Spec, compressed: Path, folder: Path
) -> ResponsibleOutcome:
    """Every step in turn, all in one folder (the flow runs them as separate tasks); each
    step's library function takes (split, spec, folder, *inputs)."""

    def run(name: str, *inputs: object) -> Any:
        return STAGES[name].function(split, spec, folder, *inputs)

    return responsible_steps(run, compressed)
