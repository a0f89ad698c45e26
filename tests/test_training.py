"""The quality gate: the shipped int8 model against the baseline of the same run and a floor."""

from __future__ import annotations

import pytest

from assay.config import GatesSpec, QualityGateSpec
from assay.training import quality_gate


def _metrics(student: float, baseline: float) -> dict[str, dict[str, float]]:
    return {
        "student_int8": {"roc_auc": student, "pr_auc": student - 0.1},
        "baseline": {"roc_auc": baseline, "pr_auc": baseline - 0.1},
    }


def test_a_student_below_the_baseline_fails_naming_both_figures(toy_spec):
    """The case that shipped: int8 student 0.773 against the baseline's 0.801."""
    gate = quality_gate(_metrics(0.773, 0.801), toy_spec)
    assert not gate.passed
    assert gate.reason == (
        "quality gate failed: roc_auc of the int8 student minus the baseline's -0.028 "
        "(must be >= -0.01; student 0.7730, baseline 0.8010 on the same test rows): FAILED"
    )


@pytest.mark.parametrize(
    ("student", "baseline", "passed"),
    [(0.925, 0.927, True), (0.95, 0.90, True), (0.916, 0.927, False), (0.58, 0.57, False)],
)
def test_margin_and_floor(toy_spec, student, baseline, passed):
    assert quality_gate(_metrics(student, baseline), toy_spec).passed is passed


def test_the_gate_follows_its_settings(toy_spec):
    lenient = toy_spec.model_copy(
        update={"gates": GatesSpec(quality=QualityGateSpec(metric="pr_auc", margin=0.05))}
    )
    gate = quality_gate(_metrics(0.86, 0.90), lenient)
    assert gate.passed and gate.checks[0].name.startswith("pr_auc of the int8 student")
    off = toy_spec.model_copy(update={"gates": GatesSpec(quality=QualityGateSpec(enabled=False))})
    assert quality_gate(_metrics(0.5, 0.9), off).reason == "passed (0 checks)"
