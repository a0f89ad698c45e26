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
    """The student's pool as its labelled and unlabelled rows: the train rows and every
    unlabelled row, or when privacy distils on the public validation rows, those rows and
    synthetic rows drawn between them (`privacy.distil_synthetic_rows`)."""
    if not on_public_rows(spec, "distil"):
        return learning_rows(split, spec).rows, split.unlabelled
    count = spec.privacy.distil_synthetic_rows
    if count is None:
        count = len(training_rows(split, spec)) + len(split.unlabelled)
    columns = [*spec.feature_columns, *spec.attribute_columns]
    numeric = spec.columns_of_type("numeric")
    synthetic = interpolated_rows(split.valid[columns], numeric, count, spec.split.seed)
    return split.valid, synthetic


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
