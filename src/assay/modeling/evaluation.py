"""Test-set metrics for a binary classifier's positive-class probabilities."""

from __future__ import annotations

import numpy as np
from sklearn import metrics


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
