"""Split conformal prediction for a binary classifier: from held-out calibration scores, a
threshold that turns each probability into a set of labels containing the true one with the
chosen coverage. Rows whose set is not a single label go to a person. This is the fitting half;
the sets and the review flag are applied by assay.serving.policy.

The guarantee is marginal: over all rows, not within each group. A group the model is less sure
of can be under-covered while the whole reaches the target, so coverage is reported per group;
group-conditional (Mondrian) quantiles, one per group fit on that group's calibration rows, give
each group the guarantee (Vovk 2003; Romano, Barber, Sabatti and Candes 2020)."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from assay.serving.policy import class_scores, needs_review

# Float products such as 100 * 0.07 = 7.000000000000001 must not add a whole rank to the quantile.
_RANK_SLACK = 1e-9


def fit_conformal(p: np.ndarray, y: np.ndarray, coverage: float) -> float:
    """qhat: the k-th smallest calibration score s_i = 1 - P(true class of row i), with
    k = ceil((n + 1) * coverage). Then a new exchangeable row's set holds its true label with
    probability >= coverage (Vovk et al.; Lei et al. 2018). When k > n no finite threshold gives
    that guarantee, so qhat = 1.0 and every set holds both classes."""
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be strictly between 0 and 1, got {coverage}")
    labels = np.asarray(y, dtype=np.int64)
    scores = class_scores(p)[np.arange(len(labels)), labels]
    n = len(scores)
    k = math.ceil((n + 1) * coverage - _RANK_SLACK)
    if k > n:
        return 1.0
    return float(np.partition(scores, k - 1)[k - 1])


def empirical_coverage(sets: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose set contains the true label."""
    labels = np.asarray(y, dtype=np.int64)
    return float(sets[np.arange(len(labels)), labels].mean())


def fit_group_conformal(
    p: np.ndarray, y: np.ndarray, groups: pd.Series, coverage: float, min_rows: int
) -> tuple[dict[str, float], dict[str, int]]:
    """(qhat per group with at least `min_rows` calibration rows, the row counts of the groups
    left to the overall quantile)."""
    keys = groups.to_numpy()
    fitted: dict[str, float] = {}
    left: dict[str, int] = {}
    for group in sorted(set(keys)):
        rows = keys == group
        if rows.sum() < min_rows:
            left[group] = int(rows.sum())
            continue
        fitted[group] = fit_conformal(p[rows], y[rows], coverage)
    return fitted, left


def coverage_by_group(
    sets: np.ndarray, y: np.ndarray, columns: dict[str, pd.Series], min_group_size: int
) -> dict[str, list[dict]]:
    """Per sensitive feature (and intersection): each group's test rows, coverage and share
    sent to review; `small` marks a group under `min_group_size` rows, whose figure is noise."""
    labels = np.asarray(y, dtype=np.int64)
    covered = sets[np.arange(len(labels)), labels]
    review = needs_review(sets)
    report = {}
    for feature, groups in columns.items():
        keys = groups.to_numpy()
        report[feature] = [
            {
                "group": str(group),
                "rows": int(rows.sum()),
                "coverage": float(covered[rows].mean()),
                "review_share": float(review[rows].mean()),
                "small": bool(rows.sum() < min_group_size),
            }
            for group in sorted(set(keys))
            for rows in [keys == group]
        ]
    return report


def method(figures: dict) -> str:
    """How the quantile was fit, in words (the card, the run summary)."""
    rows = f"{figures['calibration_rows']:,} calibration rows"
    if not figures["group_by"]:
        return f"one quantile from {rows}"
    return f"a quantile per group of {' x '.join(figures['group_by'])} from {rows}"


def group_coverage_rows(figures: dict) -> list[dict]:
    """One row per sensitive group (and intersection): what the card and Prefect show."""
    return [
        {
            "feature": feature,
            "group": g["group"],
            "test rows": g["rows"],
            "coverage": round(g["coverage"], 4),
            "review share": round(g["review_share"], 4),
            "small": "yes" if g["small"] else "",
        }
        for feature, groups in figures["groups"].items()
        for g in groups
    ]


def conformal_metrics(figures: dict) -> dict[str, float]:
    """The stage's numbers as MLflow metrics: the overall figures, and each group's coverage and
    review share as `<feature>.<group>.coverage` (names keep only what MLflow allows)."""
    scalars = ("target_coverage", "qhat", "calibration_rows", "empirical_coverage", "review_share")
    out = {name: float(figures[name]) for name in scalars}
    for feature, groups in figures["groups"].items():
        for g in groups:
            name = _metric_name(f"{feature.replace(' x ', '_x_')}.{g['group']}")
            out |= {f"{name}.coverage": g["coverage"], f"{name}.review_share": g["review_share"]}
    return out


def _metric_name(text: str) -> str:
    return re.sub(r"[^\w\-. /]", "_", text)
