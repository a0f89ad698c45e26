"""Which rows each fitting step of a training reads. Under differential privacy the training
rows are private: weights learn from them only by DP-SGD, and the steps that fit on rows
without noise (tokenizer bins and vocabulary, class balance, calibration, thresholds, the
drift profile) move to the validation rows when the spec marks them public, and so may
pretraining and distillation (`privacy.pretrain_on`, `privacy.distil_on`)."""

from __future__ import annotations

from typing import Literal

import pandas as pd

from assay.config import Spec
from assay.data.augment import Augmented, augment_rows
from assay.data.interpolate import interpolated_rows
from assay.data.split import Split

# The default number of synthetic distillation rows: as many as the real pool, up to this many
# (past it the pool alone gives the student more rows than its step budget reads).
MAX_SYNTHETIC_ROWS = 50_000


def training_rows(split: Split, spec: Spec) -> pd.DataFrame:
    """Labelled train rows for the transformer: all, or a seeded subsample (quick profile)."""
    if spec.train_rows is None or spec.train_rows >= len(split.train):
        return split.train
    return split.train.sample(spec.train_rows, random_state=spec.split.seed)


def learning_rows(split: Split, spec: Spec) -> Augmented:
    """The labelled rows weights learn from (fine-tuning, distillation): the training rows,
    with synthetic rows for scarce groups when the spec augments (assay.data.augment)."""
    return augment_rows(training_rows(split, spec), spec)


def pretraining_rows(split: Split, spec: Spec, train: pd.DataFrame) -> pd.DataFrame:
    """Every non-test row, labelled or not (only the public validation rows when privacy
    pretrains on them); a seeded sample when pretrain.max_rows caps it."""
    if on_public_rows(spec, "pretrain"):
        corpus = split.valid.reset_index(drop=True)
    else:
        corpus = pd.concat([train, split.valid, split.unlabelled], ignore_index=True)
    cap = spec.pretrain.max_rows
    if cap is None or cap >= len(corpus):
        return corpus
    return corpus.sample(cap, random_state=spec.split.seed).reset_index(drop=True)


def distillation_parts(split: Split, spec: Spec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The student's pool as its labelled and unlabelled rows: the train rows, then every
    unlabelled row and `compression.synthetic_rows` rows drawn between pairs of those rows
    (assay.data.interpolate: more inputs to learn the teacher's outputs on); or, when privacy
    distils on the public validation rows, those rows and synthetic rows drawn between them
    (`privacy.distil_synthetic_rows`). Private distillation by DP-SGD gets no synthetic rows:
    drawn from private rows without noise, they would escape the accounting."""
    columns = [*spec.feature_columns, *spec.attribute_columns]
    numeric = spec.columns_of_type("numeric")
    if on_public_rows(spec, "distil"):
        count = spec.privacy.distil_synthetic_rows
        if count is None:
            count = len(training_rows(split, spec)) + len(split.unlabelled)
        synthetic = interpolated_rows(split.valid[columns], numeric, count, spec.split.seed)
        return split.valid, synthetic
    labelled = learning_rows(split, spec).rows
    if spec.privacy is not None:
        return labelled, split.unlabelled
    real = pd.concat([labelled[columns], split.unlabelled[columns]], ignore_index=True)
    count = spec.compression.synthetic_rows
    if count is None:
        count = min(len(real), MAX_SYNTHETIC_ROWS)
    synthetic = interpolated_rows(real, numeric, count, spec.split.seed)
    return labelled, pd.concat([split.unlabelled, synthetic], ignore_index=True)


def distillation_rows(split: Split, spec: Spec) -> pd.DataFrame:
    """The student's pool: its labelled rows, then its unlabelled ones."""
    return pd.concat(distillation_parts(split, spec), ignore_index=True)


def on_public_rows(spec: Spec, stage: Literal["pretrain", "distil"]) -> bool:
    """Whether a private spec trains `stage` on the public validation rows without noise."""
    return spec.privacy is not None and spec.privacy.on_public_rows(stage)


def fits_on_validation(spec: Spec) -> bool:
    """Whether the noise-free fitting steps read the (public) validation rows."""
    return spec.privacy is not None and spec.privacy.public_validation


def fitting_rows(split: Split, spec: Spec) -> pd.DataFrame:
    """The rows noise-free fitting steps read: the training rows, or under privacy with a
    public validation split the validation rows."""
    return split.valid if fits_on_validation(spec) else training_rows(split, spec)
