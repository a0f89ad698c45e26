"""Mitigation: ThresholdOptimizer's rules, stored as plain JSON and applied with numpy, give the
same positive probabilities as Fairlearn itself and close the equalized-odds gap on new rows;
reweighing makes label and group independent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import equalized_odds_difference

from assay.responsible import mitigation
from assay.responsible.mitigation import fit_group_thresholds, reweighing
from assay.serving.policy import DecisionPolicy, row_draws


def _biased(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Scores that run higher for group 'm' at the same label: unequal TPR and FPR at 0.5."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"sex": rng.choice(["f", "m"], n, p=[0.35, 0.65]), "x": rng.random(n)})
    y = (rng.random(n) < np.where(frame["sex"] == "m", 0.3, 0.1)).astype(int)
    logit = 2.5 * (y - 0.5) + np.where(frame["sex"] == "m", 0.8, -0.8) + rng.normal(0, 1.2, n)
    return frame, y, 1 / (1 + np.exp(-logit))


@pytest.mark.parametrize("constraint", mitigation.THRESHOLD_CONSTRAINTS)
def test_stored_rules_reproduce_fairlearns_probabilities(constraint, monkeypatch):
    frame, y, scores = _biased(3000, 0)
    captured = {}
    original = mitigation.ThresholdOptimizer.fit

    def keep(self, *args, **kwargs):
        captured["optimizer"] = self
        return original(self, *args, **kwargs)

    monkeypatch.setattr(mitigation.ThresholdOptimizer, "fit", keep)
    rules = fit_group_thresholds(scores, y, frame["sex"], "sex", constraint)
    theirs = captured["optimizer"]._pmf_predict(
        scores.reshape(-1, 1), sensitive_features=frame["sex"]
    )
    np.testing.assert_allclose(rules.positive_probability(scores, frame["sex"]), theirs[:, 1])


def test_equalized_odds_rules_close_the_gap_on_new_rows(tmp_path):
    frame, y, scores = _biased(6000, 1)
    rules = fit_group_thresholds(scores, y, frame["sex"], "sex", "equalized_odds")
    test, y_test, s_test = _biased(20000, 2)
    before = equalized_odds_difference(
        y_test, (s_test >= 0.5).astype(int), sensitive_features=test["sex"]
    )
    DecisionPolicy(thresholds=rules).save(tmp_path)
    reloaded = DecisionPolicy.load(tmp_path).thresholds
    after = equalized_odds_difference(
        y_test, reloaded.decide(s_test, test), sensitive_features=test["sex"]
    )
    assert before > 0.15 and after < 0.04


def test_decisions_depend_on_the_row_not_its_batch():
    frame, y, scores = _biased(2000, 3)
    rules = fit_group_thresholds(scores, y, frame["sex"], "sex", "equalized_odds")
    whole = rules.decide(scores, frame)
    halves = np.concatenate(
        [rules.decide(scores[:700], frame.iloc[:700]), rules.decide(scores[700:], frame.iloc[700:])]
    )
    np.testing.assert_array_equal(whole, halves)
    draws = row_draws(frame)
    assert draws.min() >= 0 and draws.max() < 1 and abs(draws.mean() - 0.5) < 0.03


def test_an_unseen_group_gets_the_plain_threshold():
    frame, y, scores = _biased(2000, 4)
    rules = fit_group_thresholds(scores, y, frame["sex"], "sex", "demographic_parity")
    unseen = pd.Series(["x"] * 4)
    s = np.array([0.2, 0.49, 0.51, 0.9])
    np.testing.assert_array_equal(rules.positive_probability(s, unseen), [0, 0, 1, 1])


def test_an_unknown_constraint_is_named():
    with pytest.raises(ValueError, match="unknown constraint 'fairness'"):
        fit_group_thresholds(
            np.zeros(4), np.array([0, 1, 0, 1]), pd.Series(list("aabb")), "g", "fairness"
        )


def test_reweighing_makes_label_and_group_independent():
    frame, y, _ = _biased(5000, 5)
    weights = reweighing(y, frame["sex"])
    table = pd.DataFrame({"g": frame["sex"], "y": y, "w": weights})
    joint = table.groupby(["g", "y"])["w"].sum() / weights.sum()
    p_g = table.groupby("g")["w"].sum() / weights.sum()
    p_y = table.groupby("y")["w"].sum() / weights.sum()
    for (g, label), p in joint.items():
        assert p == pytest.approx(p_g[g] * p_y[label])
    assert weights.sum() == pytest.approx(len(y))


def test_groups_too_small_to_fit_keep_the_plain_threshold(adult_spec):
    """Per-group thresholds fit on five rows are noise; such a group is left out of the fit
    (and said so), and its rows are decided by the spec's plain threshold."""
    from assay.responsible.options import mitigation_options

    frame, y, scores = _biased(3000, 2)
    frame.loc[:4, "sex"] = "x"  # a group of five training rows
    spec = adult_spec.model_copy(update={"sensitive_features": ["sex"]})
    notes: list[str] = []
    options = mitigation_options(scores, y, frame, spec, notes)
    rules = options["equalized_odds"]
    assert set(rules.rules) == {"f", "m"}
    assert notes == [
        "mitigation on sex: groups with fewer than 50 training rows keep the plain threshold: x"
    ]
    policy = DecisionPolicy(thresholds=rules, threshold=0.3)
    rows = pd.DataFrame({"sex": ["x", "x"], "x": [0.1, 0.2]})
    assert policy.decisions(np.array([0.31, 0.29]), rows).tolist() == [1, 0]
