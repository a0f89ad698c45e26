"""The training sections: the split, the reference family, the encoder and its pretraining and
fine-tuning, and the student's distillation, pruning and compression gate."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveFloat, model_validator

from assay.config.source import Section


class SplitSpec(Section):
    rule: Literal["source", "random"] = Field(
        description="'source': rows from files matching test_sources are the test set; "
        "'random': a seeded stratified share of labelled rows is."
    )
    test_sources: list[str] = Field(
        default=[], description="Glob patterns on the original file name (rule 'source')."
    )
    test_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Share of labelled rows held out (rule 'random')."
    )
    validation_fraction: float = Field(
        default=0.1, gt=0, lt=1, description="Share of training rows kept for early stopping."
    )
    calibration_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of the labelled non-test rows held out for the conformal quantile "
        "(and, under privacy with both held-out splits public, the mitigation's group "
        "thresholds): never trained on, never used for early stopping, the temperature or the "
        "threshold (stratified; every copy of a row on the same side). Coverage on new rows "
        "varies by about sqrt(0.09 / n) around a 0.9 target with n calibration rows: 0.1 of "
        "Adult (3,257 rows) gave 0.8946 on adult.test, 0.2 (6,514) 0.8993.",
    )
    max_calibration_rows: int = Field(
        default=10_000,
        gt=0,
        description="At most this many calibration rows (about 0.003 of spread at 0.9): on "
        "large data the rest train the model.",
    )
    seed: int = Field(default=0, description="Seed for every random split.")

    @model_validator(mode="after")
    def _source_rule_needs_patterns(self) -> SplitSpec:
        if self.rule == "source" and not self.test_sources:
            raise ValueError("test_sources must list at least one pattern when rule is 'source'")
        return self


class BaselineSpec(Section):
    """The reference family (assay.modeling.reference): gradient boosting with a small seeded
    search and logistic regression, the best on the validation rows being "the reference"."""

    members: list[Literal["boosting", "logistic"]] = Field(
        default=["boosting", "logistic"],
        min_length=1,
        description="Family members tried; the best on the validation rows is the reference.",
    )
    learning_rate: float = Field(
        default=0.05, gt=0, description="Shrinkage per boosting step (the first shape tried)."
    )
    max_iter: int = Field(default=1000, gt=0, description="Upper bound on boosting rounds.")
    max_leaf_nodes: int = Field(default=31, gt=1, description="Tree size (the first shape tried).")
    l2_regularization: float = Field(
        default=0.0, ge=0, description="Leaf value penalty (the first shape tried)."
    )
    early_stopping_rounds: int = Field(
        default=30, gt=0, description="Stop after this many rounds without validation gain."
    )
    search: int = Field(
        default=4,
        gt=0,
        description="Boosting shapes tried: the one above, then shapes drawn (seeded) from "
        "assay.modeling.reference.SHAPES; each stops early on the validation rows.",
    )
    logistic_c: list[PositiveFloat] = Field(
        default=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
        min_length=1,
        description="Inverse regularisation strengths the logistic member tries.",
    )
    seed: int = Field(default=0, description="Seed for the boosters and the shape search.")


class _EncoderShape(Section):
    """Shared check for the teacher's and the student's network shape."""

    @model_validator(mode="after")
    def _heads_divide_width(self) -> _EncoderShape:
        if self.hidden_size % self.num_heads:
            raise ValueError("num_heads must divide hidden_size")
        return self


class ModelSpec(_EncoderShape):
    """The BERT-style encoder over record tokens; small, because a record is ~15 tokens."""

    hidden_size: int = Field(default=64, gt=0, description="Width of every token vector.")
    num_layers: int = Field(default=3, gt=0, description="Transformer blocks.")
    num_heads: int = Field(default=4, gt=0, description="Attention heads (must divide hidden).")
    intermediate_size: int = Field(default=128, gt=0, description="Feed-forward width.")
    dropout: float = Field(default=0.1, ge=0, lt=1, description="Dropout in the encoder.")
    numeric_bins: int = Field(
        default=32, gt=1, description="Quantile bins per numeric column (fit on train rows)."
    )
    numeric_frequencies: int = Field(
        default=16,
        ge=0,
        description="Periodic features that embed a numeric cell's value beside its bin "
        "token (Gorishniy et al. 2022); 0 keeps bin tokens only.",
    )
    text_vocab_size: int = Field(
        default=2000, gt=10, description="Subword vocabulary per text column."
    )
    text_max_tokens: int = Field(default=32, gt=0, description="Subword tokens kept per text cell.")
    checkpoint: Path | None = Field(
        default=None, description="Start from this pretrained encoder folder instead of random."
    )
    seed: int = Field(default=0, description="Seed for initialisation, masking and shuffling.")


# Sizes left unset adapt to the rows a stage trains on (assay.modeling.sizes holds the rule).
_BATCH_RULE = (
    "Rows per step; default: the largest power of two giving at least 30 steps per epoch, "
    "between 16 and 256."
)
_EPOCH_RULE = (
    "Upper bound on passes over the train rows; default: enough for about 1,200 optimizer "
    "steps, at least 12 and at most 100."
)
_PATIENCE_RULE = "Epochs without validation gain to stop; default: a quarter of epochs, >= 3."


class PretrainSpec(Section):
    """Masked cell modelling on every non-test row, labelled or not."""

    enabled: bool = Field(default=True, description="Skip to start fine-tuning from random.")
    epochs: int | None = Field(
        default=None,
        ge=0,
        description="Passes over the pretraining rows; default: enough for about 500 "
        "optimizer steps, at least 4 and at most 50.",
    )
    batch_size: int | None = Field(default=None, gt=0, description=_BATCH_RULE)
    max_rows: int | None = Field(
        default=None,
        gt=0,
        description="Pretrain on a seeded sample of at most this many rows (all by default; "
        "the quick profile caps it).",
    )
    learning_rate: float = Field(default=1e-3, gt=0, description="Peak AdamW learning rate.")
    mask_rate: float = Field(default=0.15, gt=0, lt=1, description="Share of cells masked.")


class FinetuneSpec(Section):
    """Supervised training of the classification head plus LoRA adapters (or everything)."""

    method: Literal["lora", "full"] = Field(
        default="lora", description="'lora': adapters on the encoder's linear layers; 'full'."
    )
    lora_r: int = Field(default=8, gt=0, description="LoRA rank.")
    lora_alpha: int = Field(default=16, gt=0, description="LoRA scaling numerator.")
    lora_dropout: float = Field(default=0.05, ge=0, lt=1, description="Dropout on LoRA input.")
    epochs: int | None = Field(default=None, gt=0, description=_EPOCH_RULE)
    patience: int | None = Field(default=None, gt=0, description=_PATIENCE_RULE)
    batch_size: int | None = Field(default=None, gt=0, description=_BATCH_RULE)
    learning_rate: float = Field(default=2e-3, gt=0, description="Peak AdamW learning rate.")
    class_weights: bool = Field(default=True, description="Weight the loss by inverse class size.")


class StudentSpec(_EncoderShape):
    """The distilled student's shape: small enough to run in well under a millisecond."""

    hidden_size: int = Field(default=32, gt=0, description="Width of every token vector.")
    num_layers: int = Field(default=1, gt=0, description="Transformer blocks.")
    num_heads: int = Field(default=2, gt=0, description="Attention heads (must divide hidden).")
    intermediate_size: int = Field(default=64, gt=0, description="Feed-forward width.")
    numeric_frequencies: int = Field(default=8, ge=0, description="Periodic value features.")


class PruningSpec(Section):
    """Structured pruning of the distilled student: the least important attention heads and
    feed-forward units of each block are removed, then a short distillation recovers."""

    enabled: bool = Field(default=True, description="Prune the student after distillation.")
    heads: float = Field(
        default=0.5,
        ge=0,
        lt=1,
        description="Share of each block's attention heads to remove "
        "(rounded down; at least one head always stays).",
    )
    units: float = Field(
        default=0.5, ge=0, lt=1, description="Share of each block's feed-forward units to remove."
    )
    importance_rows: int = Field(
        default=4096, gt=0, description="Pool rows whose loss gradients score importance."
    )
    recovery_epochs: int = Field(
        default=4, gt=0, description="Upper bound on recovery distillation passes."
    )
    recovery_learning_rate: float = Field(
        default=1e-3, gt=0, description="Peak AdamW learning rate while recovering."
    )
    max_valid_drop: float = Field(
        default=0.002,
        ge=0,
        description="Largest validation ROC AUC the recovered student may lose to the unpruned "
        "one; past it, or when its int8 model agrees with fp32 on fewer validation rows than "
        "the compression gate's min_agreement, the unpruned student ships (the summary says "
        "why).",
    )


class CompressionGateSpec(Section):
    """What the int8 student must show before it may ship (checked on the test split)."""

    min_agreement: float = Field(
        default=0.995, ge=0, le=1, description="Share of rows where int8 and fp32 predict alike."
    )
    max_auc_drop: float = Field(
        default=0.005, ge=0, description="Largest ROC AUC the int8 student may lose to the teacher."
    )
    max_size_ratio: float = Field(
        default=0.1, gt=0, description="int8 student file size / fp32 teacher file size."
    )
    max_latency_ms: float = Field(
        default=1.0, gt=0, description="Batch-1 median latency budget, one thread."
    )


class CompressionSpec(Section):
    """Distillation into the student, then ONNX export and int8 quantization."""

    student: StudentSpec = Field(default=StudentSpec(), description="Student network shape.")
    epochs: int | None = Field(default=None, gt=0, description=_EPOCH_RULE)
    patience: int | None = Field(default=None, gt=0, description=_PATIENCE_RULE)
    batch_size: int | None = Field(default=None, gt=0, description=_BATCH_RULE)
    learning_rate: float = Field(default=3e-3, gt=0, description="Peak AdamW learning rate.")
    temperature: float = Field(default=2.0, gt=0, description="Softening of teacher logits.")
    soft_weight: float = Field(
        default=0.7, ge=0, le=1, description="Weight of the teacher's soft labels vs true labels."
    )
    pruning: PruningSpec = Field(default=PruningSpec(), description="Heads and units removed.")
    teacher: Literal["ensemble", "teacher"] = Field(
        default="ensemble",
        description="What the student learns from: 'ensemble' (the fine-tuned teacher and the "
        "reference family's members, weighted by log loss on the validation rows; under "
        "privacy the teacher alone) or 'teacher'.",
    )
    synthetic_rows: int | None = Field(
        default=None,
        ge=0,
        description="Unlabelled rows drawn between pairs of real pool rows for the student to "
        "learn the teacher's outputs on (assay.data.interpolate); None: as many as the real "
        "pool, at most 50,000; 0: none. Not under privacy (privacy.distil_synthetic_rows).",
    )
    reweigh_on: str | None = Field(
        default=None,
        description="Distil with reweighing by this sensitive feature and the label "
        "(Kamiran & Calders: weights make group and label independent); None: unweighted.",
    )
    quantization: Literal["dynamic", "static"] = Field(
        default="dynamic", description="int8 method: dynamic, or static QDQ with calibration."
    )
    calibration_rows: int = Field(default=2000, gt=0, description="Training rows for static.")
    gate: CompressionGateSpec = Field(default=CompressionGateSpec(), description="Ship criteria.")

    def recovery(self) -> CompressionSpec:
        """Pruning recovery's schedule: a short distillation with its own epochs and rate."""
        return self.model_copy(
            update={
                "epochs": self.pruning.recovery_epochs,
                "learning_rate": self.pruning.recovery_learning_rate,
            }
        )
