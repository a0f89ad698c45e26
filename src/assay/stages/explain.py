"""Explanations: interventional SHAP of the shipped (calibrated) int8 model on a seeded sample
of test rows, absent features drawn from the rows the model was fitted on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assay.config import Spec
from assay.data.split import Split
from assay.modeling.rows import fitting_rows
from assay.responsible.explain import (
    dependence_plot,
    example_explanations,
    global_importance,
    importance_plot,
    shapley_values,
)
from assay.serving.policy import apply_temperature
from assay.stages import calibrate, compress
from assay.stages.calibrate import Calibration, load_scorer
from assay.stages.compress import STUDENT_SECTIONS
from assay.stages.stage import Stage, folder_of

NAME = "explain"
SHAP_FILE = "shap_values.npy"  # per explained test row, one column per feature


@dataclass(frozen=True)
class Explanations:
    """Mean |SHAP| per feature (largest first), the base value, example rows and the plots;
    the per-row values are saved beside them (SHAP_FILE, one column per feature)."""

    importance: dict[str, float]
    base: float
    examples: list[dict]
    plot: str
    dependence: str


def explain_stage(
    split: Split, spec: Spec, folder: Path, compressed: Path, calibration: Calibration
) -> Explanations:
    """Interventional SHAP of the shipped (calibrated) model on a seeded sample of test rows,
    absent features drawn from a seeded sample of the rows the model was fitted on (under
    privacy with public validation rows, those: the report then reveals no private row)."""
    folder.mkdir(parents=True, exist_ok=True)
    settings, seed = spec.explanations, spec.split.seed
    sample, background = explanation_rows(split, spec)
    scorer = load_scorer(compressed)

    def calibrated(frame: pd.DataFrame) -> np.ndarray:
        return apply_temperature(scorer.logits(frame), calibration.temperature)

    shapley = shapley_values(
        calibrated,
        sample,
        background,
        spec.feature_columns,
        permutations=settings.permutations,
        seed=seed,
    )
    np.save(folder / SHAP_FILE, shapley.values.to_numpy(), allow_pickle=False)
    importance = global_importance(shapley.values)
    top = list(importance.index[: settings.top])
    examples = example_explanations(
        sample, shapley.values, shapley.predictions, rows=settings.examples
    )
    return Explanations(
        importance={k: float(v) for k, v in importance.items()},
        base=shapley.base,
        examples=examples,
        plot=str(importance_plot(importance, folder / "importance.png")),
        dependence=str(dependence_plot(sample, shapley.values, top, folder / "dependence.png")),
    )


def explanation_rows(split: Split, spec: Spec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(test rows explained, background rows): seeded samples of `explanations.rows` test
    rows and `explanations.background` of the rows the model was fitted on."""
    settings, seed = spec.explanations, spec.split.seed

    def sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
        return frame.sample(min(rows, len(frame)), random_state=seed).reset_index(drop=True)

    return sample(split.test, settings.rows), sample(fitting_rows(split, spec), settings.background)


def run(
    folder: Path, split: Split, spec: Spec, compressed: Any, calibration: Calibration
) -> Explanations:
    return explain_stage(split, spec, folder, folder_of(compressed), calibration)


STAGE = Stage(
    NAME,
    (*STUDENT_SECTIONS, "explanations"),
    (compress.NAME, calibrate.NAME),
    run,
    Explanations,
    figures=lambda o: {f"importance.{k}": v for k, v in o.importance.items()},
)
