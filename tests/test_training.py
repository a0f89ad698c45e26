"""The quality gate: the shipped int8 model against the reference of the same run and a floor,
judged on the paired interval of their difference: its lower bound within the margin, and its
upper bound never below zero, whatever the margin."""

from __future__ import annotations

import pytest

from assay.config import GatesSpec, QualityGateSpec
from assay.modeling.paired import PairedDifference
from assay.training import quality_gate
from tests.conftest import versus


def test_a_student_below_the_reference_fails_naming_both_figures(toy_spec):
    """The case that shipped: int8 student 0.773 against the baseline's 0.801."""
    comparison = versus(0.773, 0.801, half=0.004)
    gate = quality_gate(comparison, toy_spec, "reference (boosting)")
    assert not gate.passed
    assert gate.reason == (
        "quality gate failed: 95% paired lower bound of roc_auc, int8 student minus reference "
        "(boosting) -0.032 (must be >= -0.01): FAILED; 95% paired upper bound of roc_auc, int8 "
        "student minus reference (boosting) -0.024 (must be >= 0; a student the test rows show "
        "below the reference never ships, whatever the margin): FAILED; int8 student 0.7730, "
        "reference (boosting) 0.8010 on the same test rows; "
        f"{comparison.describe()}"
    )


def test_a_passed_gate_still_names_both_figures_and_the_interval(toy_spec):
    comparison = versus(0.925, 0.927, half=0.003)
    gate = quality_gate(comparison, toy_spec)
    assert gate.passed
    assert gate.reason == (
        "passed (3 checks); int8 student 0.9250, reference 0.9270 on the same test rows; "
        f"{comparison.describe()}"
    )


@pytest.mark.parametrize(
    ("student", "baseline", "half", "passed"),
    [
        (0.925, 0.927, 0.003, True),
        (0.95, 0.90, 0.01, True),
        (0.916, 0.927, 0.0, False),
        (0.925, 0.927, 0.009, False),  # within the margin at the point, not at the lower bound
        (0.9265, 0.927, 0.0001, False),  # within the margin, but shown below the reference
        (0.58, 0.57, 0.0, False),  # the floor
    ],
)
def test_margin_at_the_lower_bound_upper_bound_and_floor(toy_spec, student, baseline, half, passed):
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
    ap = PairedDifference("pr_auc", 0.86, 0.90, -0.045, 0.005, 1000, 0)
    gate = quality_gate(ap, lenient)
    assert gate.passed and gate.checks[0].name.startswith("95% paired lower bound of pr_auc")
    off = toy_spec.model_copy(update={"gates": GatesSpec(quality=QualityGateSpec(enabled=False))})
    assert quality_gate(versus(0.5, 0.9), off).reason == "passed (0 checks)"


def test_no_margin_lets_through_a_student_whose_whole_interval_is_below(toy_spec):
    """The quick profile's wider margin named champions 0.929 against 0.952: never again."""
    wide = toy_spec.model_copy(update={"gates": GatesSpec(quality=QualityGateSpec(margin=0.05))})
    gate = quality_gate(versus(0.929, 0.952, half=0.01), wide)
    assert not gate.passed
    assert [c.name.split(" of ")[0] for c in gate.failed] == ["95% paired upper bound"]
