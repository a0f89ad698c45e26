"""Split conformal sets reach the promised coverage on fresh rows; qhat matches a hand count;
rows without a single label go to review; the module imports only numpy at load time."""

from __future__ import annotations

import re

import numpy as np
import pytest

from assay.responsible.conformal import empirical_coverage, fit_conformal
from assay.serving.policy import needs_review, prediction_sets


def _calibrated(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    p = rng.beta(0.7, 0.7, size=n)
    return p, (rng.random(n) < p).astype(int)


@pytest.mark.parametrize("coverage", [0.9, 0.95])
def test_test_rows_reach_the_target_coverage(coverage):
    rng = np.random.default_rng(0)
    qhat = fit_conformal(*_calibrated(5_000, rng), coverage)
    p, y = _calibrated(20_000, rng)
    assert empirical_coverage(prediction_sets(p, qhat), y) == pytest.approx(coverage, abs=0.01)


def test_qhat_is_the_kth_smallest_score():
    # scores 1 - P(true): .1, .2, .3, .4 (order scrambled); k = ceil(5 * .6) = 3 -> .3
    p = np.array([0.7, 0.9, 0.4, 0.1])
    y = np.array([1, 1, 0, 0])
    assert fit_conformal(p, y, 0.6) == pytest.approx(0.3)


def test_qhat_is_one_when_the_rank_passes_n():
    # k = ceil(5 * .9) = 5 > 4 rows: no finite threshold guarantees 90%
    qhat = fit_conformal(np.array([0.7, 0.9, 0.4, 0.1]), np.array([1, 1, 0, 0]), 0.9)
    assert qhat == 1.0
    assert prediction_sets(np.array([0.0, 0.5, 1.0]), qhat).all()


@pytest.mark.parametrize("coverage", [0.0, 1.0, 1.5])
def test_coverage_outside_zero_one_names_the_value(coverage):
    with pytest.raises(ValueError, match=re.escape(f"got {coverage}")):
        fit_conformal(np.array([0.5]), np.array([1]), coverage)


def test_needs_review_marks_empty_and_both_class_sets():
    sets = np.array([[True, False], [False, True], [True, True], [False, False]])
    assert needs_review(sets).tolist() == [False, False, True, True]


def test_sets_follow_the_threshold():
    # qhat .3: class 1 needs p >= .7, class 0 needs p <= .3
    sets = prediction_sets(np.array([0.8, 0.2, 0.5]), 0.3)
    assert sets.tolist() == [[False, True], [True, False], [False, False]]
    sets = prediction_sets(np.array([0.5]), 0.6)
    assert sets.tolist() == [[True, True]]


def test_a_confident_correct_model_gives_singletons():
    y = np.array([0, 1, 1, 0, 1] * 20)
    p = y.astype(float)
    sets = prediction_sets(p, fit_conformal(p, y, 0.9))
    assert not needs_review(sets).any()
    assert empirical_coverage(sets, y) == 1.0
