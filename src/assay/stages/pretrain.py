"""Pretraining: the record tokenizer and the masked-cell encoder, fit on every non-test row
there is, labelled or not (assay.modeling.teacher.pretrain_stage)."""

from __future__ import annotations

from pathlib import Path

from assay.config import Spec
from assay.data.split import Split
from assay.modeling import teacher
from assay.modeling.teacher import PretrainOutcome
from assay.stages.stage import Stage

NAME = "pretrain"


def run(folder: Path, split: Split, spec: Spec) -> PretrainOutcome:
    return teacher.pretrain_stage(split, spec, folder)


STAGE = Stage(
    NAME,
    ("train_rows", "model", "pretrain", "privacy"),
    (),
    run,
    PretrainOutcome,
    figures=lambda o: {"seconds": o.seconds, "peak_rss_mb": o.peak_rss_mb},
    curves=lambda o: {"loss": o.epoch_loss},
)
