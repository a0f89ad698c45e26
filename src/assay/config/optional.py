"""The sections that are off when absent (keys.OPTIONAL_SECTIONS): differential privacy,
federated fine-tuning, synthetic rows for scarce groups."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from assay.config.source import Section


class PrivacySpec(Section):
    """Differential privacy: every weight-training stage runs DP-SGD (Opacus), one accountant
    composes them, and the privacy gate holds the spent epsilon to the budget."""

    epsilon: float = Field(gt=0, description="The budget: largest epsilon the model may spend.")
    delta: float = Field(
        default=1e-5, gt=0, lt=1, description="The delta of the guarantee (below 1 / rows)."
    )
    max_grad_norm: float = Field(default=1.0, gt=0, description="Per-row gradient clipping bound.")
    accountant: Literal["rdp", "prv"] = Field(
        default="rdp", description="How stages compose: Renyi DP or the PRV accountant."
    )
    batch_size: int | None = Field(
        default=None,
        gt=0,
        description="Expected rows per DP-SGD step in every private stage (default: each "
        "stage's own rule); larger batches spend less budget per pass.",
    )
    learning_rate_scale: float = Field(
        default=3.0,
        gt=0,
        description="Each private stage's learning rate is its own times this: clipped, noisy "
        "gradients are small, and the plain rates barely move the weights (on Adult at "
        "epsilon 3, about 1,200 steps per stage, 3 trained the best teacher; 5 and 10 "
        "diverged). A short schedule of a few hundred steps needs more (10 trained the "
        "tests' tiny model in 4 epochs, where 3 left it at ROC AUC 0.61).",
    )
    public: list[Literal["validation", "calibration"]] = Field(
        default=[],
        description="Splits whose rows need no protection: 'validation' then fits the "
        "tokenizer, class balance, calibration, thresholds and the drift profile, and "
        "'calibration' the conformal quantile, which otherwise read private rows without "
        "noise (the card lists them as not covered).",
    )

    pretrain_on: Literal["private", "public"] = Field(
        default="private",
        description="'public': pretrain the encoder on the public validation rows without "
        "noise, spending no budget (needs public: [validation]); 'private': by DP-SGD on "
        "every private row.",
    )
    distil_on: Literal["private", "public"] = Field(
        default="private",
        description="'public': the student learns the private teacher's outputs on the public "
        "validation rows and synthetic rows between them without noise (post-processing "
        "spends no budget; needs public: [validation]), leaving the whole budget to "
        "pretraining and fine-tuning; 'private': by "
        "DP-SGD on the training and unlabelled rows.",
    )
    distil_synthetic_rows: int | None = Field(
        default=None,
        ge=0,
        description="With distil_on: public, the student also learns the teacher's outputs on "
        "this many synthetic rows drawn between pairs of public validation rows "
        "(assay.data.interpolate; post-processing, no budget): None draws as many as the "
        "training and unlabelled rows it would distil on without privacy, 0 none. On Adult "
        "at epsilon 3 the 2,605 validation rows alone shipped ROC AUC 0.9073, with 20,000 "
        "synthetic rows 0.9108.",
    )

    @property
    def public_validation(self) -> bool:
        return "validation" in self.public

    @property
    def public_held_out(self) -> bool:
        """Both held-out splits, validation and calibration, are public."""
        return {"validation", "calibration"} <= set(self.public)

    def on_public_rows(self, stage: Literal["pretrain", "distil"]) -> bool:
        """Whether `stage` trains on the public validation rows without noise."""
        return getattr(self, f"{stage}_on") == "public"

    @model_validator(mode="after")
    def _public_stages_need_public_rows(self) -> PrivacySpec:
        for name in ("pretrain_on", "distil_on"):
            if getattr(self, name) == "public" and not self.public_validation:
                raise ValueError(f"{name}: public needs public: [validation]")
        return self


class FederationSpec(Section):
    """Federated fine-tuning: the LoRA adapter is trained in rounds by the sites, each on its
    own rows in its own home (a `site-round/<site>` deployment on the site's work pool), and
    averaged by the coordinator (FedAvg weighted by rows). A is frozen and B trained (FFA-LoRA),
    so the average of the sites' adapters is the adapter of the averaged update, exactly."""

    sites: list[str] = Field(
        min_length=2,
        description="The sites' names: each serves `site-round/<name>` (`assay site`).",
    )
    rounds: int = Field(default=20, gt=0, description="Most rounds of local training + average.")
    local_epochs: int = Field(default=1, gt=0, description="Passes over its rows per site round.")
    patience: int | None = Field(
        default=None,
        gt=0,
        description="Stop when the sites' validation ROC AUC (weighted by their validation "
        "rows) has not improved for this many rounds (default: run every round).",
    )
    round_timeout_s: float = Field(
        default=3600, gt=0, description="How long a round waits for every site's answer."
    )

    @model_validator(mode="after")
    def _sites_are_names(self) -> FederationSpec:
        bad = [s for s in self.sites if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", s)]
        if bad or len(set(self.sites)) != len(self.sites):
            raise ValueError(f"sites must be distinct short names (a-z, 0-9, _ and -): {bad}")
        return self


class AugmentSpec(Section):
    """Synthetic training rows for the scarce groups of sensitive features (SMOTE-NC), drawn
    within each group and label so both stay as they were; validation, calibration and test
    rows stay real. Off when absent: `assay bench fairness` measures whether it helps."""

    groups: list[str] = Field(
        min_length=1,
        description="Sensitive features whose scarce groups get synthetic rows.",
    )
    method: Literal["smote_nc"] = Field(
        default="smote_nc",
        description="SMOTE-NC (imbalanced-learn): numbers drawn between a row and one of its "
        "nearest neighbours in its group and label, categories the neighbours' most common.",
    )
    scarce_share: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="A group is scarce when it holds less than this share of the training rows.",
    )
    factor: float = Field(
        default=2.0,
        gt=1,
        le=20,
        description="A scarce group's training rows after augmentation, as a multiple of its "
        "real rows (each label's rows grow alike).",
    )
    k_neighbors: int = Field(
        default=5,
        gt=0,
        description="Neighbours a synthetic row is drawn towards; a group and label with no "
        "more real rows than this is left as it is (the report names it).",
    )
    min_distance: float = Field(
        default=0.001,
        ge=0,
        description="A synthetic row whose Gower distance to its closest real training row is "
        "at most this is a copy of that row and is dropped (distances run from 0 to 1).",
    )


# Sections augmentation cannot go with, and why.
AUGMENT_REFUSED = {
    "privacy": "synthetic rows are drawn from the private rows without noise",
    "federation": "the sites' rows never leave their homes, so there are none here to draw from",
}

# `--profile quick` works on every spec: these overrides, under the spec's own `quick` if it has
# one. They cap the rows each stage sees (the reference family learns from the same
# `train_rows` sample as the teacher) and shrink the teacher, so a run takes a minute or two
# whatever the data's size, and relax the budgets a briefly trained model cannot meet. No
# profile relaxes the quality gate's promise: a student shown below the reference never ships.
