"""The sections that act after training: registration and promotion, monitoring and the
retraining policy."""

from __future__ import annotations

from pydantic import Field

from assay.config.source import Section


class RegistrySpec(Section):
    """Registration and promotion in the MLflow model registry."""

    model_name: str | None = Field(
        default=None, description="Registered model name (default: assay-<spec name>)."
    )
    promotion_margin: float = Field(
        default=0.005,
        ge=0,
        description="Largest ROC AUC a candidate may lose to the champion, both scored on the "
        "same test rows in the same run, and still take `champion`: it does when the 95% "
        "paired bootstrap lower bound of (candidate - champion) is at or above -margin.",
    )
    promotion_resamples: int = Field(
        default=1000,
        ge=1000,
        description="Stratified paired bootstrap resamples behind that lower bound (seeded "
        "by split.seed).",
    )


class MonitoringSpec(Section):
    """Drift checks of new batches against the training reference profile, and when a retrain
    is requested."""

    bins: int = Field(
        default=10, gt=1, description="Quantile bins per numeric column for PSI (fit on training)."
    )
    psi_limit: float = Field(
        default=0.2,
        gt=0,
        description="PSI above which a feature, or the prediction, has drifted (0.1-0.25 is the "
        "usual 'moderate shift' band).",
    )
    p_value: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="A drifted feature must also fail its KS (numeric) or chi-square "
        "(categorical) test at this level: PSI alone is noisy on small batches.",
    )
    min_rows: int = Field(
        default=200, gt=0, description="Smaller batches are profiled and reported, not judged."
    )
    accuracy_drop: float = Field(
        default=0.05,
        ge=0,
        description="Live accuracy on newly labelled rows this far below the champion's test "
        "accuracy counts as drift.",
    )
    retrain_rows: int = Field(
        default=10_000,
        gt=0,
        description="Accepted rows since the last training that request a retrain.",
    )
    retrain_on_drift: bool = Field(
        default=True, description="Drift in an accepted batch also requests a retrain."
    )
