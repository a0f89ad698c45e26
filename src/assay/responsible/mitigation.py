"""Mitigations: Fairlearn's ThresholdOptimizer post-processing on a model's scores (demographic
parity, equalized odds or true-positive-rate parity), and reweighing of training rows by group
and label (Kamiran & Calders, 2012) for a model trained again with those weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import BaseEstimator

from assay.serving.policy import GroupRule, GroupThresholds, Operation

THRESHOLD_CONSTRAINTS = ("demographic_parity", "equalized_odds", "true_positive_rate_parity")


class _Scores(BaseEstimator):
    """An already-fitted 'estimator' whose prediction is its one input column: lets
    ThresholdOptimizer post-process scores computed elsewhere (here, by the int8 model)."""

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> _Scores:
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X)[:, 0]

    def __sklearn_is_fitted__(self) -> bool:
        return True


def _operation(operation) -> Operation:
    # Scores live in [0, 1]: an infinite threshold means "always" or "never" and is kept
    # finite so the rule stays valid JSON.
    return Operation(operation.operator, float(np.clip(operation.threshold, -1.0, 2.0)))


def fit_group_thresholds(
    scores: np.ndarray, y: np.ndarray, groups: pd.Series, feature: str, constraint: str
) -> GroupThresholds:
    """Fit ThresholdOptimizer (accuracy objective) on held-out scores; keep its per-group rules."""
    if constraint not in THRESHOLD_CONSTRAINTS:
        raise ValueError(
            f"unknown constraint {constraint!r} (known: {', '.join(THRESHOLD_CONSTRAINTS)})"
        )
    optimizer = ThresholdOptimizer(
        estimator=_Scores(),
        constraints=constraint,
        objective="accuracy_score",
        prefit=True,
        predict_method="predict",
    )
    keys = groups.astype("string").fillna("missing").reset_index(drop=True)
    optimizer.fit(scores.reshape(-1, 1), y, sensitive_features=keys)
    rules = {
        str(group): GroupRule(
            p0=float(rule.p0),
            operation0=_operation(rule.operation0),
            operation1=_operation(rule.operation1),
            p_ignore=float(rule.get("p_ignore", 0.0)),
            constant=float(rule.get("prediction_constant", 0.0)),
        )
        for group, rule in optimizer.interpolated_thresholder_.interpolation_dict.items()
    }
    return GroupThresholds(feature, constraint, rules)


def reweighing(y: np.ndarray, groups: pd.Series) -> np.ndarray:
    """Weight per row P(group) P(label) / P(group, label): after weighting, label and group are
    independent in the training data, so a model cannot learn group membership as a shortcut."""
    frame = pd.DataFrame({"g": groups.astype("string").fillna("missing").to_numpy(), "y": y})
    n = len(frame)
    p_group = frame["g"].map(frame["g"].value_counts() / n)
    p_label = frame["y"].map(frame["y"].value_counts() / n)
    p_joint = frame.groupby(["g", "y"])["y"].transform("size") / n
    return (p_group * p_label / p_joint).to_numpy(dtype=np.float64)
