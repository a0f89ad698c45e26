"""Compression: the student distilled from the teacher and the reference family as one
ensemble, pruned, exported to ONNX, quantized to int8, measured and gated
(assay.compression.stage)."""

from __future__ import annotations

from pathlib import Path

from assay.compression import stage as compression
from assay.compression.stage import CompressionOutcome
from assay.config import Spec
from assay.data.split import Split
from assay.modeling.teacher import TeacherOutcome
from assay.stages import baseline, finetune
from assay.stages.baseline import FittedBaseline
from assay.stages.stage import Stage, Table

NAME = "compress"
# the student learns from the reference family too
STUDENT_SECTIONS = (*finetune.TEACHER_SECTIONS, "baseline", "compression")


def run(
    folder: Path, split: Split, spec: Spec, tuned: TeacherOutcome, reference: FittedBaseline
) -> CompressionOutcome:
    return compression.compress_stage(
        split, spec, Path(tuned.folder), folder, Path(reference.model_dir)
    )


def figures(o: CompressionOutcome) -> dict[str, float]:
    pruning = o.pruning or {}
    return {
        "seconds": o.seconds,
        "student_params": o.student_params,
        "best_epoch": o.best_epoch,
        **o.measurements,
        **{f"size.{name}": size for name, size in o.sizes.items()},
        **{f"pruning.{k}": v for k, v in pruning.items() if isinstance(v, int | float)},
    }


def reports(o: CompressionOutcome) -> list[Table]:
    pruned = f"\n\n**Pruning**: {o.pruning['summary']}" if o.pruning else ""
    return [
        Table(
            "compression-gate",
            o.gate["checks"],
            f"**Compression gate**: {o.gate['reason']}{pruned}",
        )
    ]


STAGE = Stage(
    NAME,
    STUDENT_SECTIONS,
    (finetune.NAME, baseline.NAME),
    run,
    CompressionOutcome,
    figures=figures,
    curves=lambda o: o.history,
    files=lambda o: [("", Path(o.folder) / "gate.json")],
    kept=lambda o: Path(o.folder),
    gates=lambda o: {"compression": o.gate},
    reports=reports,
)
