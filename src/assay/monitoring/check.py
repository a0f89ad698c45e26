"""Checking new rows against a model package: drift of its inputs and predictions against the
package's reference profile, and, for rows that carry labels, its live accuracy and fairness.

The package is the champion's when there is one (what production runs), else the last trained
candidate's, so drift is watched from the first training on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from assay.config import Spec
from assay.home import Home
from assay.monitoring.drift import DriftReport, compare
from assay.monitoring.performance import LivePerformance, live_performance
from assay.monitoring.policy import LastTraining
from assay.registry.models import download, holder
from assay.registry.tracking import has_registry
from assay.serving.layout import PROFILE_FILE, REPORT_FILE
from assay.serving.predictor import Predictor
from assay.serving.profile import ReferenceProfile


@dataclass(frozen=True)
class Reference:
    package: Path
    label: str  # "champion v3", or "last training c691c696a94f (not champion)"


@dataclass(frozen=True)
class RowsCheck:
    """Everything one check found, and the one line that says what it means."""

    reference: str
    drift: DriftReport
    live: LivePerformance | None

    @property
    def detected(self) -> bool:
        return self.drift.detected or bool(self.live and self.live.degraded)

    @property
    def reason(self) -> str:
        parts = [self.drift.reason, *([self.live.reason] if self.live else [])]
        return f"against {self.reference}: " + "; ".join(parts)

    def metrics(self) -> dict[str, float]:
        """Flat figures for MLflow: PSI per feature, verdicts, live accuracy and disparities."""
        out = {f"drift.psi.{f.feature}": f.psi for f in self.drift.checks}
        out |= {"drift.detected": float(self.drift.detected), "rows": float(self.drift.rows)}
        if self.live:
            out |= {"live.accuracy": self.live.accuracy, "live.drop": self.live.drop}
            for feature, gaps in self.live.fairness.items():
                name = feature.replace(" x ", "_x_")
                out |= {f"live.{name}.{metric}": value for metric, value in gaps.items()}
        return out


def reference_package(home: Home, spec: Spec) -> Reference | None:
    """The champion's package, else the last training's; None before any training."""
    name = spec.registered_name
    if has_registry(home) and (version := holder(home, name, "champion")):
        return Reference(download(home, name, "champion"), f"champion v{version}")
    last = LastTraining.load(home.last_training)
    if last is None or not Path(last.package).is_dir():
        return None
    return Reference(Path(last.package), f"last training {last.fingerprint[:12]} (not champion)")


def shipped_accuracy(package: Path) -> float:
    """The package's test accuracy with the decisions it ships (its mitigation applied)."""
    report = json.loads((package / REPORT_FILE).read_text(encoding="utf-8"))
    return next(r["accuracy"] for r in report["tradeoff"] if r["option"] == report["mitigation"])


def check_rows(frame: pd.DataFrame, spec: Spec, reference: Reference) -> RowsCheck:
    """Score the rows with the reference model, compare inputs and scores with its profile,
    and measure its decisions where labels are present."""
    rows = frame.reset_index(drop=True)
    predictor = Predictor.load(reference.package)
    scores = predictor.probabilities(rows)
    decisions = predictor.policy.decisions(scores, rows[spec.group_columns])
    profile = ReferenceProfile.load(reference.package / PROFILE_FILE)
    drift = compare(profile, rows, spec, scores)
    live = live_performance(rows, decisions, spec, shipped_accuracy(reference.package))
    return RowsCheck(reference.label, drift, live)
