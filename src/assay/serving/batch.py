"""Batch scoring of accepted batches: one predictions file per (batch, model version), written
whole or not at all, and the shadow comparison of a challenger with the champion on the same
rows.

A predictions file is named by the batch and the version, so a rerun finds it and scores
nothing, a new champion scores every batch again under its own name, and a reader never sees a
half-written file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from assay.config import Spec
from assay.data.atomic import write_atomic
from assay.data.store import BatchRecord
from assay.serving.groups import sensitive_columns
from assay.serving.predictor import Predictor

SHADOW_DIR = "shadow"  # a challenger's predictions, beside the champion's


def predictions_file(folder: Path, batch: str, version: str) -> Path:
    return folder / f"{batch[:16]}-v{version}.parquet"


def to_score(
    records: list[BatchRecord], folder: Path, version: str, asked: list[str] | None
) -> list[BatchRecord]:
    """The unlabelled batches (of `asked`, by hash prefix, or all) without predictions of
    `version` yet."""
    wanted = [
        r
        for r in records
        if not r.labelled and (asked is None or any(r.hash.startswith(a) for a in asked))
    ]
    return [r for r in wanted if not predictions_file(folder, r.hash, version).is_file()]


def score_batch(predictor: Predictor, rows: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The batch's predictions, written to `path` unless it exists (then read from it)."""
    if path.is_file():
        return pd.read_parquet(path)
    out = predictor.predict(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda temp: out.to_parquet(temp, index=False))
    return out


@dataclass(frozen=True)
class Predictions:
    """One version's predictions for a batch, with the version's number: the shadow report
    sets two of them side by side and names each by its version."""

    version: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class ShadowReport:
    """How a challenger would have decided the rows the champion decided."""

    batch: str
    champion: str
    challenger: str
    rows: int
    agreement: float  # share of rows with the same decision
    mean_shift: float  # mean of challenger - champion probability
    mean_abs_shift: float
    positive_rate: dict[str, float]  # "champion" and "challenger"
    rate_difference: dict[str, dict[str, float]]  # feature -> group -> challenger - champion

    @property
    def largest_rate_difference(self) -> float:
        gaps = [abs(v) for groups in self.rate_difference.values() for v in groups.values()]
        return max(gaps, default=0.0)

    def summary(self) -> str:
        return (
            f"challenger v{self.challenger} beside champion v{self.champion} on {self.rows:,} "
            f"rows: {100 * self.agreement:.1f}% same decision, probability shift "
            f"{self.mean_shift:+.4f} (mean |shift| {self.mean_abs_shift:.4f}), largest "
            f"positive-rate difference in a group {self.largest_rate_difference:.4f}"
        )

    def metrics(self) -> dict[str, float]:
        """Flat figures for MLflow."""
        out = {
            "shadow.rows": float(self.rows),
            "shadow.agreement": self.agreement,
            "shadow.mean_shift": self.mean_shift,
            "shadow.mean_abs_shift": self.mean_abs_shift,
            "shadow.largest_rate_difference": self.largest_rate_difference,
        }
        out |= {f"shadow.positive_rate.{k}": v for k, v in self.positive_rate.items()}
        for feature, groups in self.rate_difference.items():
            name = feature.replace(" x ", "_x_")
            out |= {_metric(f"shadow.rate_difference.{name}.{g}"): v for g, v in groups.items()}
        return out

    def table(self) -> list[dict]:
        """One row per sensitive group, for the Prefect artifact."""
        return [
            {"feature": feature, "group": group, "challenger - champion positive rate": value}
            for feature, groups in self.rate_difference.items()
            for group, value in groups.items()
        ]

    def to_dict(self) -> dict:
        return asdict(self)


def shadow_report(
    batch: str, champion: Predictions, challenger: Predictions, rows: pd.DataFrame, spec: Spec
) -> ShadowReport:
    """Agreement, probability shift and, per sensitive group (and intersection), the
    difference in positive-decision rate, challenger minus champion."""
    positive = spec.label.positive
    ours = (champion.frame["prediction"] == positive).to_numpy(dtype=float)
    theirs = (challenger.frame["prediction"] == positive).to_numpy(dtype=float)
    shift = challenger.frame["probability"].to_numpy() - champion.frame["probability"].to_numpy()
    differences = {}
    for feature, groups in sensitive_columns(rows, spec.sensitive_features).items():
        frame = pd.DataFrame({"group": groups, "gap": theirs - ours})
        differences[feature] = {
            str(g): float(v) for g, v in frame.groupby("group")["gap"].mean().items()
        }
    return ShadowReport(
        batch=batch,
        champion=champion.version,
        challenger=challenger.version,
        rows=len(rows),
        agreement=float((ours == theirs).mean()) if len(rows) else 1.0,
        mean_shift=float(shift.mean()) if len(rows) else 0.0,
        mean_abs_shift=float(np.abs(shift).mean()) if len(rows) else 0.0,
        positive_rate={
            "champion": float(ours.mean()) if len(rows) else 0.0,
            "challenger": float(theirs.mean()) if len(rows) else 0.0,
        },
        rate_difference=differences,
    )


def _metric(name: str) -> str:
    """MLflow metric names allow letters, digits, and _ - . / and spaces."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)
