"""Split conformal sets reach the promised coverage on fresh rows; qhat matches a hand count;
rows without a single label go to review; one quantile can under-cover a harder group, and
group-conditional quantiles cover each group; a policy ships them and cuts each row at its
group's; what MLflow receives is numbers only."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from assay.responsible.conformal import (
    conformal_metrics,
    coverage_by_group,
    empirical_coverage,
    fit_conformal,
    fit_group_conformal,
)
from assay.serving.policy import DecisionPolicy, GroupQuantiles, needs_review, prediction_sets


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


def _two_groups(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Calibrated scores where group "b" (a quarter of the rows) is far harder than "a"."""
    group = np.where(rng.random(n) < 0.25, "b", "a")
    p = np.where(group == "a", rng.beta(0.3, 0.3, n), rng.beta(3.0, 3.0, n))
    return p, (rng.random(n) < p).astype(int), pd.Series(group)


def test_one_quantile_under_covers_a_harder_group_and_group_quantiles_do_not():
    rng = np.random.default_rng(3)
    p, y, groups = _two_groups(8_000, rng)
    p_test, y_test, test_groups = _two_groups(40_000, rng)
    columns = {"g": test_groups}
    marginal = prediction_sets(p_test, fit_conformal(p, y, 0.9))
    overall = coverage_by_group(marginal, y_test, columns, min_group_size=50)["g"]
    assert empirical_coverage(marginal, y_test) == pytest.approx(0.9, abs=0.01)
    assert {g["group"]: g["coverage"] < 0.88 for g in overall} == {"a": False, "b": True}
    fitted, left = fit_group_conformal(p, y, groups, 0.9, min_rows=100)
    assert set(fitted) == {"a", "b"} and left == {}
    per_row = GroupQuantiles(["g"], fitted).per_row(pd.DataFrame({"g": test_groups}), 0.5)
    mondrian = prediction_sets(p_test, per_row)
    for g in coverage_by_group(mondrian, y_test, columns, min_group_size=50)["g"]:
        assert g["coverage"] == pytest.approx(0.9, abs=0.01), g
        assert 0 < g["review_share"] < 1 and not g["small"]


def test_a_group_with_too_few_calibration_rows_and_an_unseen_one_use_the_overall_quantile():
    rng = np.random.default_rng(4)
    p, y, groups = _two_groups(2_000, rng)
    groups[:30] = "c"
    fitted, left = fit_group_conformal(p, y, groups, 0.9, min_rows=100)
    assert set(fitted) == {"a", "b"} and left == {"c": 30}
    quantiles = GroupQuantiles(["g"], fitted)
    frame = pd.DataFrame({"g": ["a", "c", "never seen", None]})
    np.testing.assert_allclose(quantiles.per_row(frame, 0.25), [fitted["a"], 0.25, 0.25, 0.25])


def test_coverage_by_group_counts_rows_and_flags_small_groups():
    sets = np.array([[True, False], [True, True], [False, True], [False, True]])
    y = np.array([0, 1, 0, 1])
    groups = pd.Series(["x", "x", "x", "z"])
    [x, z] = coverage_by_group(sets, y, {"f": groups}, min_group_size=2)["f"]
    assert x == {"group": "x", "rows": 3, "coverage": 2 / 3, "review_share": 1 / 3, "small": False}
    assert z == {"group": "z", "rows": 1, "coverage": 1.0, "review_share": 0.0, "small": True}


def test_the_logged_metrics_are_numbers_with_a_name_per_group():
    figures = {
        "target_coverage": 0.9,
        "qhat": 0.3,
        "group_by": ["sex"],
        "group_qhats": {"columns": ["sex"], "qhats": {"F": 0.2}},
        "calibration_rows": 500,
        "empirical_coverage": 0.91,
        "review_share": 0.07,
        "groups": {"sex x race": [{"group": "F x <=Asian?", "coverage": 0.8, "review_share": 0.1}]},
        "notes": ["a note"],
    }
    metrics = conformal_metrics(figures)
    assert all(isinstance(v, float) for v in metrics.values())
    assert metrics["calibration_rows"] == 500.0
    assert metrics["sex_x_race.F x __Asian_.coverage"] == 0.8
    assert metrics["sex_x_race.F x __Asian_.review_share"] == 0.1
    assert not {"group_by", "group_qhats", "notes", "groups"} & set(metrics)


def test_a_policy_with_group_quantiles_saves_loads_and_cuts_each_row_at_its_group(tmp_path):
    quantiles = GroupQuantiles(["sex", "race"], {"F x B": 0.2, "M x W": 0.4})
    policy = DecisionPolicy(coverage=0.9, qhat=0.3, group_qhats=quantiles)
    policy.save(tmp_path)
    loaded = DecisionPolicy.load(tmp_path)
    assert loaded == policy
    rows = pd.DataFrame({"sex": ["F", "M", "M"], "race": ["B", "W", "B"]})
    np.testing.assert_allclose(loaded.qhats(rows), [0.2, 0.4, 0.3])
    # p = 0.75: the positive class is in the set when 0.25 <= qhat, the negative when 0.75 is
    review = loaded.review(np.full(3, 0.75), rows)
    assert review.tolist() == [True, False, False]
    assert not DecisionPolicy(coverage=0.9, qhat=0.3).review(np.full(3, 0.75), rows).any()
