"""The paired, stratified bootstrap behind the quality gate and promotion: its weighted metrics
are scikit-learn's, its resamples keep both classes, and pairing narrows the interval."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from assay.modeling.evaluation import bootstrap_intervals
from assay.modeling.paired import (
    PairedRule,
    paired_difference,
    stratified_weights,
    weighted_metric,
)

SKLEARN = {"roc_auc": roc_auc_score, "pr_auc": average_precision_score}


def _scores(rows: int, seed: int, decimals: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.3).astype(int)
    return y, np.round(0.4 * y + rng.random(rows), decimals)  # rounding makes ties


@pytest.mark.parametrize("metric", ["roc_auc", "pr_auc"])
@pytest.mark.parametrize(("rows", "decimals"), [(50, 1), (2000, 2), (3000, 6)])
def test_weighted_metrics_are_sklearns_with_sample_weight(metric, rows, decimals):
    y, p = _scores(rows, rows, decimals)
    for weights in stratified_weights(y, 5, seed=1):
        expected = SKLEARN[metric](y, p, sample_weight=weights)
        assert weighted_metric(metric, y, p, weights) == pytest.approx(expected, abs=1e-12)


def test_every_resample_keeps_each_class_count():
    y = np.array([0] * 97 + [1] * 3)
    for weights in stratified_weights(y, 200, seed=0):
        assert weights[y == 1].sum() == 3 and weights[y == 0].sum() == 97


def test_one_class_rows_are_refused_by_name():
    with pytest.raises(ValueError, match="needs both classes; these 4 rows have 0 positive"):
        next(stratified_weights(np.zeros(4), 1, seed=0))


def test_the_interval_is_seeded_and_pairing_narrows_it():
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], [700, 300])
    a = y * 0.8 + rng.random(len(y))
    b = a + rng.normal(0, 0.1, len(y))  # close to a: most of the noise is shared
    first, again = paired_difference(y, a, b, seed=4), paired_difference(y, a, b, seed=4)
    assert first == again and first.low <= first.difference <= first.high
    assert first.candidate == pytest.approx(roc_auc_score(y, a))
    unpaired = [bootstrap_intervals(y, p, samples=1000, seed=4)["roc_auc"] for p in (a, b)]
    narrower_alone = min(high - low for low, high in unpaired)
    assert first.high - first.low < 0.75 * narrower_alone


def test_a_model_against_itself_differs_by_exactly_zero():
    y, p = _scores(400, 2, 3)
    same = paired_difference(y, p, p.copy(), "pr_auc", resamples=1000)
    assert (same.low, same.difference, same.high) == (0.0, 0.0, 0.0)
    assert PairedRule(0.0).accepts(same)


def test_scores_for_different_rows_are_refused():
    with pytest.raises(ValueError, match="3 labels, 3 candidate and 2 reference"):
        paired_difference(np.array([0, 1, 1]), np.zeros(3), np.zeros(2))
