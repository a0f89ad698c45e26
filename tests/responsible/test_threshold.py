"""The operating threshold: each rule on a worked example, and the imbalanced case that a
fixed 0.5 gets wrong (every decision negative) while the default rule does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assay.config import CostSpec, DecisionSpec
from assay.responsible.gate import decision_gate
from assay.responsible.threshold import choose_threshold

# Six rows: the positives score 0.9, 0.6 and 0.3; the negatives 0.7, 0.2 and 0.1.
P = np.array([0.9, 0.7, 0.6, 0.3, 0.2, 0.1])
Y = np.array([1, 0, 1, 1, 0, 0])


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("max_f1", 0.3),  # positives at >= 0.3: TP 3, FP 1 -> F1 6/7
        ("max_accuracy", 0.3),  # 5 of 6 right (at 0.9 and at 0.6: 4 of 6)
        ("match_prevalence", 0.6),  # half the training rows are positive: the top half
        (0.42, 0.42),
    ],
)
def test_each_rule_picks_its_threshold(rule, expected):
    chosen = choose_threshold(P, Y, DecisionSpec(threshold=rule), prevalence=0.5)
    assert chosen.value == pytest.approx(expected)
    assert chosen.rule == ("fixed" if isinstance(rule, float) else rule)


def test_the_cost_rule_weighs_missed_positives():
    dear_misses = DecisionSpec(threshold="cost", costs=CostSpec(false_negative=5.0))
    assert choose_threshold(P, Y, dear_misses, prevalence=0.5).value == pytest.approx(0.3)
    dear_alarms = DecisionSpec(threshold="cost", costs=CostSpec(false_positive=5.0))
    assert choose_threshold(P, Y, dear_alarms, prevalence=0.5).value == pytest.approx(0.9)


def test_rare_positives_and_a_shy_model_still_get_positive_decisions():
    """12% positives, every score below 0.5: 0.5 decides no one positive; max_f1 does."""
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.12).astype(int)
    p = np.clip(0.08 + 0.2 * y + rng.normal(0, 0.08, 2000), 0.01, 0.45)
    fixed = choose_threshold(p, y, DecisionSpec(threshold=0.5), prevalence=0.12)
    assert fixed.valid_positive_share == 0.0
    default = choose_threshold(p, y, DecisionSpec(), prevalence=0.12)
    assert default.rule == "max_f1" and 0.05 < default.valid_positive_share < 0.5
    assert default.valid_f1 > 0.5


def test_degenerate_decisions_fail_the_decision_gate_naming_the_share():
    groups = {"sex": pd.Series(["a", "b"] * 500)}
    report = decision_gate(np.zeros(1000, dtype=int), groups, DecisionSpec(threshold=0.5))
    assert not report.passed
    assert "share of test decisions in one class 1 (must be <= 0.99; negative" in report.reason
    assert "groups of sex with a positive decision 0 (must be >= 1" in report.reason
    mixed = np.r_[np.zeros(900, dtype=int), np.ones(100, dtype=int)]
    assert decision_gate(mixed, groups, DecisionSpec()).passed


def test_a_warn_only_degeneracy_check_passes_with_the_warning():
    spec = DecisionSpec(threshold=0.5, on_degenerate="warn")
    report = decision_gate(np.zeros(10, dtype=int), {}, spec)
    assert report.passed and report.reason.startswith("passed with warnings")
