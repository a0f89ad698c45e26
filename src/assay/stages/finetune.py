"""Fine-tuning: the teacher, a LoRA adapter on the pretrained encoder, fit here or in rounds at
the federation's sites (assay.modeling.teacher, assay.federated.stage)."""

from __future__ import annotations

from pathlib import Path

from assay.config import Spec
from assay.data.split import Split
from assay.federated.exchange import Exchange
from assay.federated.stage import Ask, federated_finetune_stage
from assay.modeling import teacher
from assay.modeling.teacher import AUGMENTATION, PretrainOutcome, TeacherOutcome
from assay.stages import pretrain
from assay.stages.stage import Stage

NAME = "finetune"
# "privacy": under a private spec every DP-SGD stage's key covers every stage's plan
# (Spec.stage_digest); without one the keys are as before.
TEACHER_SECTIONS = (
    "train_rows",
    "model",
    "pretrain",
    "finetune",
    "privacy",
    "federation",
    "augment",
)


def run(
    folder: Path,
    split: Split,
    spec: Spec,
    pretrained: PretrainOutcome,
    federation: tuple[Exchange, Ask] | None = None,
) -> TeacherOutcome:
    """`federation`: where the sites' rounds are exchanged and how they are asked (the shell
    provides it when the spec is federated)."""
    if spec.federation is not None:
        if federation is None:
            raise ValueError("a federated spec's fine-tuning needs its exchange and sites")
        return federated_finetune_stage(split, spec, Path(pretrained.folder), folder, *federation)
    return teacher.finetune_stage(split, spec, Path(pretrained.folder), folder)


def figures(o: TeacherOutcome) -> dict[str, float]:
    return {
        "seconds": o.seconds,
        "peak_rss_mb": o.peak_rss_mb,
        "trainable_params": o.trainable_params,
        "total_params": o.total_params,
        "trainable_fraction": o.trainable_fraction,
        "best_epoch": o.best_epoch,
    }


def files(o: TeacherOutcome) -> list[tuple[str, Path]]:
    kept = [("adapter", Path(o.folder) / "adapter"), ("", Path(o.folder) / AUGMENTATION)]
    return [(folder, path) for folder, path in kept if path.exists()]


STAGE = Stage(
    NAME,
    TEACHER_SECTIONS,
    (pretrain.NAME,),
    run,
    TeacherOutcome,
    figures=figures,
    curves=lambda o: o.history,
    files=files,
    kept=lambda o: Path(o.folder),
)
