"""Test-set metrics for binary classifiers, with bootstrap confidence intervals."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn import metrics

from assay.modeling.paired import stratified_weights

METRICS = ("accuracy", "roc_auc", "pr_auc", "log_loss", "brier")


def binary_metrics(y_true: np.ndarray, p_positive: np.ndarray) -> dict[str, float]:
    """Accuracy at 0.5, ROC AUC, PR AUC, log loss and Brier score, as plain floats."""
    p = np.clip(p_positive, 1e-7, 1 - 1e-7)
    return {
        "accuracy": float(metrics.accuracy_score(y_true, p >= 0.5)),
        "roc_auc": float(metrics.roc_auc_score(y_true, p)),
        "pr_auc": float(metrics.average_precision_score(y_true, p)),
        "log_loss": float(metrics.log_loss(y_true, p, labels=[0, 1])),
        "brier": float(metrics.brier_score_loss(y_true, p)),
        "rows": float(len(y_true)),
    }


def bootstrap_intervals(
    y_true: np.ndarray, p_positive: np.ndarray, *, samples: int = 200, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile 95% intervals from resampling test rows with replacement (seeded), each
    class on its own (assay.modeling.paired), so every resample has an AUC and none is dropped."""
    draws: dict[str, list[float]] = {m: [] for m in METRICS}
    for weights in stratified_weights(y_true, samples, seed):
        index = np.repeat(np.arange(len(y_true)), weights)
        for name, value in binary_metrics(y_true[index], p_positive[index]).items():
            if name in draws:
                draws[name].append(value)
    return {
        m: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for m, v in draws.items()
    }


def compare(
    y_true: np.ndarray, scores: Mapping[str, np.ndarray], *, samples: int = 200, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Metrics and interval bounds per model, flat: {model: {"roc_auc": x, "roc_auc_low": y}}."""
    table = {}
    for model, p in scores.items():
        row = binary_metrics(y_true, p)
        for metric, (low, high) in bootstrap_intervals(
            y_true, p, samples=samples, seed=seed
        ).items():
            row[f"{metric}_low"], row[f"{metric}_high"] = low, high
        table[model] = row
    return table
