"""The quality gate: the shipped int8 model against the baseline of the same run and a floor,
judged at the lower bound of the paired interval of their difference."""

from __future__ import annotations

import pytest

from assay.config import GatesSpec, QualityGateSpec
from assay.modeling.paired import PairedDifference
from assay.training import quality_gate
from tests.conftest import versus


def test_a_student_below_the_baseline_fails_naming_both_figures(toy_spec):
    """The case that shipped: int8 student 0.773 against the baseline's 0.801."""
    comparison = versus(0.773, 0.801, half=0.004)
    gate = quality_gate(comparison, toy_spec)
    assert not gate.passed
    assert gate.reason == (
        "quality gate failed: 95% paired lower bound of roc_auc, int8 student minus baseline "
        "-0.032 (must be >= -0.01; student 0.7730, baseline 0.8010 on the same test rows; "
        f"{comparison.describe()}): FAILED"
    )


@pytest.mark.parametrize(
    ("student", "baseline", "half", "passed"),
    [
        (0.925, 0.927, 0.003, True),
        (0.95, 0.90, 0.01, True),
        (0.916, 0.927, 0.0, False),
        (0.925, 0.927, 0.009, False),  # within the margin at the point, not at the lower bound
        (0.58, 0.57, 0.0, False),  # the floor
    ],
)
def test_margin_at_the_lower_bound_and_floor(toy_spec, student, baseline, half, passed):
    assert quality_gate(versus(student, baseline, half), toy_spec).passed is passed


def test_a_gap_within_the_margin_that_the_split_cannot_show_says_so(toy_spec):
    unshown = quality_gate(versus(0.925, 0.927, 0.009), toy_spec).reason
    assert "the point difference is within the margin but this test split cannot show it" in unshown
    assert "more test rows, or a wider gates.quality.margin" in unshown
    assert "cannot show" not in quality_gate(versus(0.90, 0.927, 0.009), toy_spec).reason


def test_the_gate_follows_its_settings(toy_spec):
    lenient = toy_spec.model_copy(
        update={"gates": GatesSpec(quality=QualityGateSpec(metric="pr_auc", margin=0.05))}
    )
    ap = PairedDifference("pr_auc", 0.86, 0.90, -0.045, -0.035, 1000, 0)
    gate = quality_gate(ap, lenient)
    assert gate.passed and gate.checks[0].name.startswith("95% paired lower bound of pr_auc")
    off = toy_spec.model_copy(update={"gates": GatesSpec(quality=QualityGateSpec(enabled=False))})
    assert quality_gate(versus(0.5, 0.9), off).reason == "passed (0 checks)"
