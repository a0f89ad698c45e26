"""The sections of what a model must show besides quality, and how it decides: fairness, the
operating threshold and its costs, the leakage guard and the quality gate, conformal review and
explanations."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from assay.config.source import AttributeSpec, Section

DisparityMetric = Literal[
    "demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"
]
Mitigation = Literal["none", "demographic_parity", "equalized_odds", "true_positive_rate_parity"]


class FairnessLimit(Section):
    """One fairness gate check: a disparity of one sensitive feature (or of the intersection,
    named like `sex x race`) against a limit. Ratios must stay at or above it, differences at
    or below it."""

    feature: str = Field(description="A sensitive feature, or the intersection 'a x b'.")
    metric: DisparityMetric = Field(description="The Fairlearn disparity measured on test.")
    limit: float = Field(ge=0, description="Largest difference, or smallest ratio, allowed.")


class FairnessSpec(Section):
    """The fairness assessment, the mitigation that ships with the model, and its gate."""

    min_group_size: int = Field(
        default=50,
        gt=0,
        description="Groups with fewer test rows are flagged as too small to judge (and "
        "groups with fewer training rows are left out of fitting the mitigation).",
    )
    small_groups: Literal["exclude", "include"] = Field(
        default="exclude",
        description="'exclude': small groups are reported but left out of the gate's "
        "disparities and of mitigation fitting (a disparity between a group of 3 rows and "
        "one of 8 is noise); 'include': every group counts.",
    )
    bootstrap: int = Field(default=200, gt=0, description="Resamples for disparity intervals.")
    mitigation: Mitigation = Field(
        default="none",
        description="Post-processing that ships with the model: per-group thresholds from "
        "Fairlearn's ThresholdOptimizer under this constraint, or 'none' (one threshold, "
        "chosen by `decision.threshold`). "
        "Reweighing is a training choice: compression.reweigh_on.",
    )
    mitigate_on: str | None = Field(
        default=None, description="Sensitive feature the mitigation uses (default: the first)."
    )
    gate: list[FairnessLimit] = Field(default=[], description="Checks every candidate must pass.")
    attributes: dict[str, AttributeSpec] = Field(
        default={},
        description="Sensitive attributes that are not model inputs, or bands and merged "
        "groups of a column: each is kept with every batch and may be named in "
        "sensitive_features; the model never sees it.",
    )


ThresholdRule = Literal["max_accuracy", "max_f1", "match_prevalence", "cost"]


class CostSpec(Section):
    """What each kind of wrong decision costs, for the 'cost' threshold rule."""

    false_positive: float = Field(default=1.0, ge=0, description="Cost of a false positive.")
    false_negative: float = Field(default=1.0, ge=0, description="Cost of a false negative.")


class DecisionSpec(Section):
    """How the shipped model turns a calibrated probability into a decision, and when the
    decisions are too one-sided to ship."""

    threshold: float | ThresholdRule = Field(
        default="max_f1",
        description="The operating threshold: a number in (0, 1), or a rule fit on the "
        "validation rows' calibrated scores: 'max_f1' (the default: never all-negative, "
        "however rare the positive class), 'max_accuracy', 'match_prevalence' (as many "
        "positives as the training rows have) or 'cost' (least total cost under `costs`).",
    )
    costs: CostSpec = Field(default=CostSpec(), description="Costs for the 'cost' rule.")
    max_class_share: float = Field(
        default=0.99,
        gt=0.5,
        le=1,
        description="Degeneracy check: the shipped test decisions fail (or warn) when more "
        "than this share of them is one class, or no group of a sensitive feature gets a "
        "positive decision.",
    )
    on_degenerate: Literal["fail", "warn"] = Field(
        default="fail", description="What a degenerate set of decisions does to the run."
    )

    @model_validator(mode="after")
    def _threshold_in_range(self) -> DecisionSpec:
        if isinstance(self.threshold, float) and not 0 < self.threshold < 1:
            raise ValueError("threshold must lie strictly between 0 and 1, or name a rule")
        return self


class LeakageSpec(Section):
    """The leakage guard, checked on the split before anything trains."""

    max_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Largest share of test rows allowed to equal (features and label) a "
        "training, validation or calibration row; above it the data gate fails, naming the "
        "batches.",
    )


class QualityGateSpec(Section):
    """The shipped int8 model against the gradient-boosting baseline of the same run."""

    enabled: bool = Field(default=True, description="Check quality before promotion.")
    metric: Literal["roc_auc", "pr_auc"] = Field(
        default="roc_auc", description="Test metric compared (higher is better)."
    )
    margin: float = Field(
        default=0.01,
        ge=0,
        description="Largest amount the shipped model may fall below the baseline's metric: "
        "the gate passes when the 95% paired bootstrap lower bound of (shipped - baseline) on "
        "the test rows is at or above -margin.",
    )
    resamples: int = Field(
        default=1000,
        ge=1000,
        description="Stratified paired bootstrap resamples behind that lower bound (seeded "
        "by split.seed).",
    )
    floor: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="Smallest metric the shipped model may have, whatever the baseline does "
        "(ROC AUC 0.5 is chance).",
    )


class GatesSpec(Section):
    """Gates that judge the run as a whole (data leakage, quality against the baseline)."""

    leakage: LeakageSpec = Field(default=LeakageSpec(), description="The leakage guard.")
    quality: QualityGateSpec = Field(default=QualityGateSpec(), description="The quality gate.")


class UncertaintySpec(Section):
    """Split conformal prediction: rows whose prediction set is not one class go to review."""

    coverage: float = Field(
        default=0.9, gt=0, lt=1, description="Target share of prediction sets holding the truth."
    )
    group_by: list[str] = Field(
        default=[],
        description="Group-conditional (Mondrian) conformal: one quantile per group of these "
        "sensitive features' intersection, fit on that group's calibration rows, so each group "
        "reaches the target and not only the whole ([]: one quantile for all rows).",
    )
    min_group_rows: int = Field(
        default=100,
        gt=0,
        description="A group with fewer calibration rows than this uses the overall quantile "
        "(its own would be too noisy); the report names it.",
    )


class ExplanationSpec(Section):
    """Interventional SHAP of the shipped int8 model's calibrated probability."""

    rows: int = Field(default=2000, gt=0, description="Test rows explained (a seeded sample).")
    background: int = Field(
        default=50,
        gt=0,
        description="Rows the model was fitted on (a seeded sample) that stand in for an absent "
        "feature; the cost grows with rows x background.",
    )
    permutations: int = Field(
        default=1,
        gt=0,
        description="Feature orderings per row, each run forward and backward (the values add "
        "up to the prediction exactly for any number).",
    )
    top: int = Field(default=5, gt=0, description="Most important features in the report.")
    examples: int = Field(default=3, gt=0, description="Rows explained one by one in the report.")
