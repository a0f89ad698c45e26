"""Drift of what a served model saw: its traffic windows (assay.serving.traffic) against the
reference profile of the package that scored them.

A window keeps, per numeric column, every value it saw (a window holds at most SAMPLE_ROWS
rows) and its missing share, per categorical column its shares, and the scores' profile; pooled
over windows they give back each column's values, so the same PSI and tests as for a batch
apply (assay.monitoring.drift), column by column. A category beyond a window's 50 most
frequent counts as `<other>` there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from assay.config import Spec
from assay.monitoring.drift import DriftReport, categorical_drift, numeric_drift
from assay.serving.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from assay.serving.traffic import TrafficWindow

MAX_WINDOWS = 200  # the most recent windows compared (200k rows at 1,000 per window)


def served_windows(folder: Path, package: str) -> list[TrafficWindow]:
    """The most recent windows that the package with this digest scored."""
    if not folder.is_dir():
        return []
    windows = [TrafficWindow.load(p) for p in sorted(folder.glob("*.json"))]
    return [w for w in windows if w.package == package][-MAX_WINDOWS:]


def traffic_drift(
    reference: ReferenceProfile, windows: list[TrafficWindow], spec: Spec
) -> DriftReport:
    """Every numeric and categorical column, and the scores, pooled over the windows."""
    profiles = [w.profile for w in windows]
    limits = spec.monitoring
    features = []
    for c in spec.columns_of_type("numeric"):
        values = _values([p.numeric[c] for p in profiles], profiles)
        features.append(numeric_drift(c, "numeric", reference.numeric[c], values, limits))
    for c in spec.columns_of_type("categorical"):
        cells = _cells([p.categorical[c] for p in profiles], profiles)
        features.append(categorical_drift(c, reference.categorical[c], cells, limits))
    prediction = None
    if reference.prediction is not None and all(p.prediction for p in profiles):
        scores = _values([p.prediction for p in profiles], profiles)
        prediction = numeric_drift("prediction", "prediction", reference.prediction, scores, limits)
    return DriftReport(sum(p.rows for p in profiles), limits.min_rows, features, prediction)


def _values(columns: list[NumericProfile], profiles: list[ReferenceProfile]) -> np.ndarray:
    """The values the windows saw, with NaN for each missing one."""
    parts = []
    for column, profile in zip(columns, profiles, strict=True):
        missing = round(column.missing * profile.rows)
        parts += [np.asarray(column.sample, dtype=np.float64), np.full(missing, np.nan)]
    return np.concatenate(parts) if parts else np.empty(0)


def _cells(columns: list[CategoricalProfile], profiles: list[ReferenceProfile]) -> pd.Series:
    """The categories the windows saw, each as often as it was seen."""
    names, counts = [], []
    for column, profile in zip(columns, profiles, strict=True):
        for name, share in column.shares.items():
            names.append(name)
            counts.append(round(share * profile.rows))
    return pd.Series(np.repeat(np.asarray(names, dtype=object), counts), dtype="object")
