"""The reference family (gradient boosting and a linear model, text as TF-IDF in both), fit on
the rows the teacher learns from; the best on the validation rows is the reference the
quality gate, the card and the benchmarks compare with, and the student also learns from."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from assay.config import Spec
from assay.data.split import Split
from assay.modeling.reference import Tried, best_tried, fit_reference
from assay.modeling.rows import training_rows
from assay.stages.stage import Stage

NAME = "baseline"


@dataclass(frozen=True)
class FittedBaseline:
    """Where the reference (the best of the reference family on the validation rows) and its
    test-set scores were written, and what was tried to choose it."""

    model_dir: str
    test_scores: str
    iterations: int  # boosting rounds kept (0 when the linear member was chosen)
    fit_seconds: float  # the whole family
    member: str  # which member is the reference: "boosting" or "logistic"
    chosen: str  # the reference and every member's best validation figure, in words
    tried: tuple[Tried, ...]  # every candidate with its validation figures

    @property
    def name(self) -> str:
        """How tables and gates name it: `reference (boosting)`."""
        return f"reference ({self.member})"


def fit_and_score_baseline(split: Split, spec: Spec, run_dir: Path) -> FittedBaseline:
    """Fit the reference family on the rows the teacher learns from (all training rows, or the
    spec's `train_rows` sample: every model of a run sees the same labels), choose the
    reference on the validation rows and keep its test scores, so evaluation never needs to
    load it."""
    started = time.perf_counter()
    family = fit_reference(training_rows(split, spec), split.valid, spec)
    seconds = time.perf_counter() - started
    model, model_dir = family.chosen, run_dir / NAME
    for member, best in family.best.items():
        best.save(model_dir / member)
    (model_dir / "tried.json").write_text(json.dumps([asdict(t) for t in family.tried], indent=2))
    scores = run_dir / "baseline_test_scores.npy"
    np.save(scores, model.predict_proba(split.test), allow_pickle=False)
    return FittedBaseline(
        str(model_dir),
        str(scores),
        model.iterations,
        seconds,
        model.member,
        family.describe(),
        family.tried,
    )


def run(folder: Path, split: Split, spec: Spec) -> FittedBaseline:
    return fit_and_score_baseline(split, spec, folder)


def figures(fitted: FittedBaseline) -> dict[str, float]:
    return {
        "iterations": fitted.iterations,
        "seconds": fitted.fit_seconds,
        **{f"valid.{t.member}": t.valid_metric for t in best_tried(fitted.tried)},
    }


STAGE = Stage(
    NAME,
    ("train_rows", "baseline"),
    (),
    run,
    FittedBaseline,
    figures=figures,
    kept=lambda fitted: Path(fitted.model_dir),
)
