"""Drift of a new batch against the reference profile, per feature and in the predictions.

A feature drifts only when two views agree: PSI says the shift is large enough to matter, and a
test (KS for numbers, chi-square for categories) says it is unlikely to be sampling noise. PSI
alone flags noise on small batches; a test alone flags trivial shifts on large ones.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import chisquare, ks_2samp

from assay.config import MonitoringSpec, Spec
from assay.errors import AssayError
from assay.serving.profile import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    bin_shares,
    categories,
    numbers,
)

FLOOR = 1e-4  # smallest share PSI and the chi-square expectation use: empty bins stay finite


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: sum of (actual - expected) * ln(actual / expected)."""
    expected = np.maximum(np.asarray(expected, dtype=np.float64), FLOOR)
    actual = np.maximum(np.asarray(actual, dtype=np.float64), FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "numeric", "categorical" or "prediction"
    psi: float
    test: str  # "ks" or "chi-square"
    statistic: float  # NaN when the test could not run (no values on one side)
    p_value: float
    drifted: bool

    def describe(self) -> str:
        test = "KS" if self.test == "ks" else "chi-square"
        return f"{self.feature} (PSI {self.psi:.3g}, {test} p={self.p_value:.2g})"


@dataclass(frozen=True)
class DriftReport:
    rows: int
    min_rows: int
    features: list[FeatureDrift]
    prediction: FeatureDrift | None

    @property
    def judged(self) -> bool:
        """Smaller batches are reported but never count as drift: PSI is noise there."""
        return self.rows >= self.min_rows

    @property
    def checks(self) -> list[FeatureDrift]:
        """Every feature, then the prediction when it was compared."""
        return [*self.features, *([self.prediction] if self.prediction is not None else [])]

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.checks if f.drifted]

    @property
    def detected(self) -> bool:
        return self.judged and bool(self.drifted)

    @property
    def reason(self) -> str:
        if not self.judged:
            return f"{self.rows:,} rows: below the {self.min_rows:,} rows needed to judge drift"
        found = [f for f in self.checks if f.drifted]
        if found:
            return "drift in " + ", ".join(f.describe() for f in found)
        prediction = " and the prediction" if self.prediction is not None else ""
        return f"no drift in {len(self.features)} features{prediction} over {self.rows:,} rows"

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "judged": self.judged,
            "drifted": self.drifted,
            "detected": self.detected,
            "reason": self.reason,
        }

    def table(self) -> list[dict]:
        """One row per feature (the prediction last): what the Prefect table artifact shows."""
        return [
            {
                "feature": f.feature,
                "kind": f.kind,
                "PSI": round(f.psi, 4),
                "test": f.test,
                "p-value": f"{f.p_value:.2g}",
                "drifted": f.drifted,
            }
            for f in self.checks
        ]


def compare(
    profile: ReferenceProfile, frame: pd.DataFrame, spec: Spec, scores: np.ndarray | None = None
) -> DriftReport:
    """Drift of every numeric and categorical column of the spec, and of the scores when both
    the profile and the call have them. Raises AssayError when the batch or the profile lacks a
    column."""
    numeric, categorical = spec.columns_of_type("numeric"), spec.columns_of_type("categorical")
    _require([*numeric, *categorical], frame.columns, "the batch")
    _require(numeric, profile.numeric, "the reference profile")
    _require(categorical, profile.categorical, "the reference profile")
    if scores is not None and len(scores) != len(frame):
        raise AssayError(f"{len(scores)} scores for {len(frame)} batch rows")
    limits = spec.monitoring
    features = [
        *(numeric_drift(c, "numeric", profile.numeric[c], frame[c], limits) for c in numeric),
        *(categorical_drift(c, profile.categorical[c], frame[c], limits) for c in categorical),
    ]
    prediction = None
    if scores is not None and profile.prediction is not None:
        prediction = numeric_drift("prediction", "prediction", profile.prediction, scores, limits)
    return DriftReport(len(frame), limits.min_rows, features, prediction)


def _require(columns: list[str], present: Container[str], where: str) -> None:
    missing = [c for c in columns if c not in present]
    if missing:
        raise AssayError(f"{where} lacks column(s): {', '.join(missing)}")


def numeric_drift(
    name: str,
    kind: str,
    reference: NumericProfile,
    values: pd.Series | np.ndarray,
    limits: MonitoringSpec,
) -> FeatureDrift:
    """PSI over the reference bins plus the missing bin; KS of the values against the sample."""
    values = numbers(values)
    shares, missing = bin_shares(values, reference.edges)
    index = psi([*reference.shares, reference.missing], [*shares, missing])
    present = values[~np.isnan(values)]
    if present.size and reference.sample:
        test = ks_2samp(reference.sample, present)
        statistic, p_value = float(test.statistic), float(test.pvalue)
    else:
        statistic = p_value = float("nan")
    return _verdict(name, kind, index, "ks", statistic, p_value, limits)


def categorical_drift(
    name: str, reference: CategoricalProfile, values: pd.Series, limits: MonitoringSpec
) -> FeatureDrift:
    """PSI over the reference categories (unseen ones count as OTHER) and a chi-square
    goodness-of-fit of the batch counts against the reference shares."""
    keys = list(reference.shares)
    counts = categories(values, set(keys)).value_counts().reindex(keys, fill_value=0)
    observed = counts.to_numpy(dtype=np.float64)
    total = observed.sum()
    expected = np.maximum(np.array([reference.shares[k] for k in keys]), FLOOR)
    index = psi(expected, observed / max(total, 1))
    if total:
        test = chisquare(observed, expected / expected.sum() * total)
        statistic, p_value = float(test.statistic), float(test.pvalue)
    else:
        statistic = p_value = float("nan")
    return _verdict(name, "categorical", index, "chi-square", statistic, p_value, limits)


def _verdict(
    name: str,
    kind: str,
    index: float,
    test: str,
    statistic: float,
    p_value: float,
    limits: MonitoringSpec,
) -> FeatureDrift:
    drifted = index > limits.psi_limit and p_value < limits.p_value  # False when p is NaN
    return FeatureDrift(name, kind, index, test, statistic, p_value, bool(drifted))
