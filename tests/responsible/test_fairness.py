"""Fairness assessment: Fairlearn's per-group figures match a hand-worked example, the fast
bootstrap disparities equal Fairlearn's, small groups are flagged, and the gate names what fails."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
)

from assay.config import FairnessLimit
from assay.responsible.fairness import _disparities, assess
from assay.responsible.gate import fairness_gate
from assay.serving.groups import sensitive_columns

# Two groups of four rows. a: positives predicted 1,0 / negatives 1,0; b: positive 1 / negatives
# 1,1,0. Scores order a's pairs right 3 times in 4 and b's always.
Y = np.array([1, 1, 0, 0, 1, 0, 0, 0])
PRED = np.array([1, 0, 1, 0, 1, 1, 1, 0])
SCORES = np.array([0.9, 0.4, 0.6, 0.1, 0.8, 0.7, 0.2, 0.3])
FRAME = pd.DataFrame({"sex": list("aaaabbbb"), "race": list("xyxyxyxy")})


def test_group_figures_match_the_hand_computed_example():
    report = assess(Y, PRED, SCORES, sensitive_columns(FRAME, ["sex"]), min_group_size=5)
    groups = {g["group"]: g for g in report.feature("sex").groups}
    expected = {
        "a": {"count": 4, "selection_rate": 0.5, "true_positive_rate": 0.5,
              "false_positive_rate": 0.5, "accuracy": 0.5, "roc_auc": 0.75},
        "b": {"count": 4, "selection_rate": 0.75, "true_positive_rate": 1.0,
              "false_positive_rate": 2 / 3, "accuracy": 0.5, "roc_auc": 1.0},
    }  # fmt: skip
    for group, figures in expected.items():
        for metric, value in figures.items():
            assert groups[group][metric] == pytest.approx(value), (group, metric)
        assert groups[group]["small"] is True  # 4 rows < min_group_size 5: flagged, still there
    assert json.loads(json.dumps(report.to_dict())) == report.to_dict()
    sex = report.feature("sex")
    assert sex.disparity("demographic_parity_difference").value == pytest.approx(0.25)
    assert sex.disparity("demographic_parity_ratio").value == pytest.approx(2 / 3)
    assert sex.disparity("equalized_odds_difference").value == pytest.approx(0.5)


def test_intersection_is_assessed_beside_each_feature():
    report = assess(Y, PRED, SCORES, sensitive_columns(FRAME, ["sex", "race"]), min_group_size=1)
    assert [f.feature for f in report.features] == ["sex", "race", "sex x race"]
    assert {g["group"] for g in report.feature("sex x race").groups} == {
        "a x x",
        "a x y",
        "b x x",
        "b x y",
    }
    assert not any(g["small"] for g in report.feature("sex").groups)


def test_bootstrap_disparities_equal_fairlearns_definitions():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = 300
        y, pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
        groups = pd.Series(rng.choice(["p", "q", "r"], n, p=[0.6, 0.3, 0.1]))
        codes, uniques = pd.factorize(groups)
        ours = _disparities(y, pred, codes, len(uniques))
        theirs = [
            demographic_parity_difference(y, pred, sensitive_features=groups),
            demographic_parity_ratio(y, pred, sensitive_features=groups),
            equalized_odds_difference(y, pred, sensitive_features=groups),
        ]
        np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_intervals_bracket_the_estimate():
    rng = np.random.default_rng(1)
    n = 4000
    frame = pd.DataFrame({"sex": rng.choice(["f", "m"], n)})
    y = rng.integers(0, 2, n)
    pred = np.where(frame["sex"] == "m", rng.random(n) < 0.6, rng.random(n) < 0.3).astype(int)
    report = assess(
        y, pred, pred.astype(float), sensitive_columns(frame, ["sex"]), min_group_size=30
    )
    for d in report.feature("sex").disparities:
        assert d.low <= d.value <= d.high and d.high - d.low < 0.1


def test_gate_fails_on_a_biased_model_and_names_feature_metric_value_and_limit():
    rng = np.random.default_rng(2)
    n = 2000
    frame = pd.DataFrame({"sex": rng.choice(["Female", "Male"], n)})
    y = rng.integers(0, 2, n)
    biased = ((frame["sex"] == "Male") | (y == 1) & (rng.random(n) < 0.5)).to_numpy(dtype=int)
    report = assess(
        y, biased, biased.astype(float), sensitive_columns(frame, ["sex"]), min_group_size=30
    )
    limits = [
        FairnessLimit(feature="sex", metric="equalized_odds_difference", limit=0.05),
        FairnessLimit(feature="sex", metric="demographic_parity_ratio", limit=0.8),
    ]
    gate = fairness_gate(limits, report)
    assert not gate.passed and len(gate.failed) == 2
    eo = report.feature("sex").disparity("equalized_odds_difference").value
    assert f"equalized_odds_difference on sex {eo:.6g} (must be <= 0.05): FAILED" in gate.reason
    assert "demographic_parity_ratio on sex" in gate.reason and "(must be >= 0.8)" in gate.reason
    assert gate.reason.startswith("fairness gate failed: ")


def test_gate_passes_a_model_that_ignores_the_group():
    rng = np.random.default_rng(3)
    n = 4000
    frame = pd.DataFrame({"sex": rng.choice(["Female", "Male"], n)})
    y = rng.integers(0, 2, n)
    fair = np.where(rng.random(n) < 0.9, y, 1 - y)
    report = assess(
        y, fair, fair.astype(float), sensitive_columns(frame, ["sex"]), min_group_size=30
    )
    limit = FairnessLimit(feature="sex", metric="equalized_odds_difference", limit=0.05)
    assert fairness_gate([limit], report).passed


def test_gate_fails_a_trained_model_that_learned_the_group():
    """A logistic regression trained where the historical label favours one group learns to
    use `sex`; its decisions fail an equalized-odds limit and the gate names the metric."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    n = 4000
    male = rng.random(n) < 0.6
    skill = rng.normal(size=n)
    y = (skill + 1.5 * male + rng.normal(0, 0.5, n) > 1.0).astype(int)  # biased history
    features = np.column_stack([skill, male])
    model = LogisticRegression().fit(features, y)
    assert model.coef_[0, 1] > 1  # it relies on the group
    truth = (skill + rng.normal(0, 0.5, n) > 0.4).astype(int)  # what merit alone would give
    decided = model.predict(features)
    frame = pd.DataFrame({"sex": np.where(male, "Male", "Female")})
    report = assess(
        truth, decided, model.predict_proba(features)[:, 1], sensitive_columns(frame, ["sex"]),
        min_group_size=30,
    )  # fmt: skip
    limit = FairnessLimit(feature="sex", metric="equalized_odds_difference", limit=0.05)
    gate = fairness_gate([limit], report)
    assert not gate.passed
    assert gate.reason.startswith("fairness gate failed: equalized_odds_difference on sex ")


def _tiny_groups(n: int = 2000):
    """Two large groups decided alike, and groups of 8 and 3 rows decided very differently
    (the case where two tiny groups alone made an equalized-odds difference of 0.67)."""
    rng = np.random.default_rng(5)
    groups = np.r_[rng.choice(["a", "b"], n), ["c"] * 8, ["d"] * 3]
    y = np.r_[rng.integers(0, 2, n), [1, 0] * 4, [1, 1, 0]]
    pred = np.r_[np.where(rng.random(n) < 0.9, y[:n], 1 - y[:n]), [0, 1] * 4, [1, 1, 0]]
    frame = pd.DataFrame({"group_name": groups})
    return y, pred, sensitive_columns(frame, ["group_name"])


def test_small_groups_are_reported_but_do_not_decide_the_gate():
    y, pred, sensitive = _tiny_groups()
    limit = FairnessLimit(feature="group_name", metric="equalized_odds_difference", limit=0.1)
    counted = assess(y, pred, pred.astype(float), sensitive, min_group_size=50)
    assert counted.feature("group_name").disparity("equalized_odds_difference").value == 1.0
    assert not fairness_gate([limit], counted).passed
    report = assess(y, pred, pred.astype(float), sensitive, min_group_size=50, exclude_small=True)
    assessed = report.feature("group_name")
    assert assessed.excluded == ["c", "d"]
    assert {g["group"] for g in assessed.groups} == {"a", "b", "c", "d"}  # still reported
    assert assessed.disparity("equalized_odds_difference").value < 0.1
    gate = fairness_gate([limit], report)
    assert gate.passed and "small groups left out: c, d" in gate.checks[0].note


def test_a_gate_with_no_two_groups_large_enough_says_so_and_fails():
    y, pred, sensitive = _tiny_groups(n=40)
    report = assess(y, pred, pred.astype(float), sensitive, min_group_size=50, exclude_small=True)
    assert not report.feature("group_name").assessable
    limit = FairnessLimit(feature="group_name", metric="demographic_parity_ratio", limit=0.8)
    gate = fairness_gate([limit], report)
    assert not gate.passed
    assert "demographic_parity_ratio on group_name cannot be judged (fewer than two groups" in (
        gate.reason
    )
    assert "lower fairness.min_group_size" in gate.reason
