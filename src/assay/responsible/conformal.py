"""Split conformal prediction for a binary classifier: from held-out calibration scores, a
threshold that turns each probability into a set of labels containing the true one with the
chosen coverage. Rows whose set is not a single label go to a person. This is the fitting half;
the sets and the review flag are applied by assay.serving.policy."""

from __future__ import annotations

import math

import numpy as np

from assay.serving.policy import class_scores

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
