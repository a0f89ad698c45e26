"""Fairness assessment with Fairlearn: per-group metrics for each sensitive feature and for their
intersection, the disparities a reviewer asks about with bootstrap intervals, and groups too
small to trust flagged. A small group is always reported; with `exclude_small` it is left out of
the disparities (the gate's inputs): between a group of 3 rows and one of 8, a disparity is
noise, and one such group would decide the gate.

Point estimates come from Fairlearn (`MetricFrame`, `demographic_parity_difference`, ...). The
bootstrap recomputes the same three disparities hundreds of times, which Fairlearn's per-call
overhead makes slow, so `_disparities` computes them with numpy; a test holds the two equal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, roc_auc_score

DISPARITIES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)


@dataclass(frozen=True)
class Disparity:
    """One disparity of one sensitive feature, with its bootstrap 95% interval."""

    feature: str
    metric: str
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class FeatureAssessment:
    """Per-group metrics (one dict per group) and the disparities across the groups."""

    feature: str
    groups: list[dict]
    disparities: list[Disparity]
    excluded: list[str] = field(default_factory=list)  # small groups left out of disparities

    def disparity(self, metric: str) -> Disparity:
        return next(d for d in self.disparities if d.metric == metric)

    @property
    def assessable(self) -> bool:
        """Disparities need two groups to compare; NaN values mark that there were not."""
        return len(self.groups) - len(self.excluded) >= 2


@dataclass(frozen=True)
class FairnessReport:
    features: list[FeatureAssessment]
    min_group_size: int

    def feature(self, name: str) -> FeatureAssessment:
        return next(f for f in self.features if f.feature == name)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> FairnessReport:
        features = [
            FeatureAssessment(
                f["feature"],
                f["groups"],
                [Disparity(**d) for d in f["disparities"]],
                f.get("excluded", []),
            )
            for f in raw["features"]
        ]
        return cls(features, raw["min_group_size"])

    def disparity_table(self) -> list[dict]:
        """One row per (feature, disparity): what the Prefect artifact and the card show."""
        return [
            {
                "feature": d.feature,
                "metric": d.metric,
                "value": round(d.value, 4),
                "95% CI": f"{d.low:.4f}-{d.high:.4f}",
            }
            for f in self.features
            for d in f.disparities
        ]


def _auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC, or NaN for a group holding one class only (it is undefined there)."""
    return float(roc_auc_score(y_true, scores)) if len(np.unique(y_true)) == 2 else float("nan")


def group_metrics(
    y: np.ndarray, predictions: np.ndarray, scores: np.ndarray, groups: pd.Series
) -> pd.DataFrame:
    """Selection rate, TPR, FPR, accuracy, ROC AUC and count per group (Fairlearn MetricFrame)."""
    by_label = MetricFrame(
        metrics={
            "count": count,
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "accuracy": accuracy_score,
        },
        y_true=y,
        y_pred=predictions,
        sensitive_features=groups,
    ).by_group
    by_score = MetricFrame(
        metrics={"roc_auc": _auc}, y_true=y, y_pred=scores, sensitive_features=groups
    ).by_group
    return by_label.join(by_score)


def _range(rates: np.ndarray) -> float:
    """max - min over the groups where the rate is defined (NaN when it is nowhere)."""
    defined = rates[~np.isnan(rates)]
    return float(defined.max() - defined.min()) if defined.size else float("nan")


def _disparities(y: np.ndarray, predictions: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """(DP difference, DP ratio, EO difference) as Fairlearn defines them, with numpy: rates per
    group from bincounts; a rate undefined in a group (no rows of that label) is left out."""
    rows = np.bincount(codes, minlength=k)
    chosen = np.bincount(codes, weights=predictions, minlength=k)
    positives = np.bincount(codes, weights=y, minlength=k)
    hits = np.bincount(codes, weights=predictions * y, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        selection = chosen / rows
        tpr = hits / positives
        fpr = (chosen - hits) / (rows - positives)
    present = rows > 0
    selection = selection[present]
    spread = [_range(r) for r in (tpr[present], fpr[present])]
    ratio = selection.min() / selection.max() if selection.max() > 0 else float("nan")
    return np.array([selection.max() - selection.min(), ratio, max(spread)])


def assess(
    y: np.ndarray,
    predictions: np.ndarray,
    scores: np.ndarray,
    sensitive: dict[str, pd.Series],
    *,
    min_group_size: int,
    resamples: int = 200,
    seed: int = 0,
    exclude_small: bool = False,
) -> FairnessReport:
    """The full assessment of one candidate's test predictions (0/1) and scores."""

    def draws(n: int) -> Iterator[np.ndarray]:
        """The same resamples for every feature (of one size), drawn one at a time: holding
        them all would take resamples x rows x 8 bytes (320 MB for 200 draws of 200k rows)."""
        rng = np.random.default_rng(seed)
        for _ in range(resamples):
            yield rng.integers(0, n, n)

    features = []
    for name, groups in sensitive.items():
        table = group_metrics(y, predictions, scores, groups)
        rows = [
            {
                "group": str(g),
                **{k: float(v) for k, v in m.items()},
                "small": bool(m["count"] < min_group_size),
            }
            for g, m in table.iterrows()
        ]
        excluded = [r["group"] for r in rows if r["small"]] if exclude_small else []
        keep = ~groups.isin(excluded).to_numpy()
        disparities = _with_intervals(name, y[keep], predictions[keep], groups[keep], draws)
        features.append(FeatureAssessment(name, rows, disparities, excluded))
    return FairnessReport(features, min_group_size)


def _with_intervals(
    name: str,
    y: np.ndarray,
    predictions: np.ndarray,
    groups: pd.Series,
    draws: Callable[[int], Iterator[np.ndarray]],
) -> list[Disparity]:
    """Fairlearn's point disparities and bootstrap 95% intervals; NaN where fewer than two
    groups are left to compare."""
    codes, uniques = pd.factorize(groups)
    if len(uniques) < 2:
        nan = float("nan")
        return [Disparity(name, metric, nan, nan, nan) for metric in DISPARITIES]
    point = {
        "demographic_parity_difference": demographic_parity_difference(
            y, predictions, sensitive_features=groups
        ),
        "demographic_parity_ratio": demographic_parity_ratio(
            y, predictions, sensitive_features=groups
        ),
        "equalized_odds_difference": equalized_odds_difference(
            y, predictions, sensitive_features=groups
        ),
    }
    samples = np.array(
        [_disparities(y[d], predictions[d], codes[d], len(uniques)) for d in draws(len(y))]
    )
    low, high = np.nanpercentile(samples, [2.5, 97.5], axis=0)
    return [
        Disparity(name, metric, float(point[metric]), float(low[i]), float(high[i]))
        for i, metric in enumerate(DISPARITIES)
    ]
