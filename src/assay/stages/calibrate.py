"""Calibration: one temperature fit on the validation rows, ECE before and after on the test
rows; the calibrated scores of every split are saved for the steps after it (the int8 model
scores each row once)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assay.config import Spec
from assay.data.labels import labels
from assay.data.split import Split
from assay.modeling.rows import fitting_rows
from assay.responsible.calibration import (
    expected_calibration_error,
    fit_temperature,
    reliability_diagram,
)
from assay.serving.layout import MODEL_FILE, TOKENIZER_DIR
from assay.serving.policy import apply_temperature
from assay.serving.scorer import OnnxScorer
from assay.stages import compress
from assay.stages.compress import STUDENT_SECTIONS
from assay.stages.stage import Stage, folder_of

NAME = "calibrate"
SPLITS = ("train", "valid", "calibration", "test")  # the calibrated scores saved


@dataclass(frozen=True)
class Calibration:
    """The temperature, its effect on test, and where the calibrated scores of each split lie."""

    folder: str
    temperature: float
    ece_before: float
    ece_after: float
    plot: str

    def scores(self, split: str) -> np.ndarray:
        return np.load(Path(self.folder) / f"p_{split}.npy", allow_pickle=False)

    def figures(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("temperature", "ece_before", "ece_after")}


def scored_frames(split: Split, spec: Spec) -> dict[str, pd.DataFrame]:
    """The rows behind each saved score array, in the order they were scored. "train" is what
    the mitigation, the class prior and the drift profile fit on: the training rows, or under
    privacy with a public validation split the validation rows (assay.modeling.rows)."""
    return {
        "train": fitting_rows(split, spec).reset_index(drop=True),
        "valid": split.valid.reset_index(drop=True),
        "calibration": split.calibration.reset_index(drop=True),
        "test": split.test.reset_index(drop=True),
    }


def load_scorer(compressed: Path) -> OnnxScorer:
    return OnnxScorer.load(compressed / MODEL_FILE, compressed / TOKENIZER_DIR)


def calibrate_stage(split: Split, spec: Spec, folder: Path, compressed: Path) -> Calibration:
    """One temperature on validation rows, judged on test rows; every split scored once."""
    folder.mkdir(parents=True, exist_ok=True)
    scorer, frames = load_scorer(compressed), scored_frames(split, spec)
    logits = {name: scorer.logits(frame) for name, frame in frames.items()}
    temperature = fit_temperature(logits["valid"], labels(frames["valid"], spec))
    for name in SPLITS:
        p = apply_temperature(logits[name], temperature)
        np.save(folder / f"p_{name}.npy", p, allow_pickle=False)
    y_test = labels(frames["test"], spec)
    raw_test = apply_temperature(logits["test"], 1.0)
    p_test = apply_temperature(logits["test"], temperature)
    plot = reliability_diagram(raw_test, p_test, y_test, folder / "reliability.png")
    return Calibration(
        folder=str(folder),
        temperature=temperature,
        ece_before=expected_calibration_error(raw_test, y_test),
        ece_after=expected_calibration_error(p_test, y_test),
        plot=str(plot),
    )


def run(folder: Path, split: Split, spec: Spec, compressed: Any) -> Calibration:
    return calibrate_stage(split, spec, folder, folder_of(compressed))


STAGE = Stage(
    NAME,
    STUDENT_SECTIONS,
    (compress.NAME,),
    run,
    Calibration,
    figures=Calibration.figures,
)
