"""The cached stages of a training, in one table: each stage's one name (its Prefect task, its
folder `stages/<name>/<key>/`, its Prefect cache record, its MLflow nested run and the prefix
`<name>.` of the figures it logs), the spec sections its cache key covers besides the data
sections (`section.field` for one field of a section), the library function that does its
work, and the type of its outcome.

The sections are checked against the Spec model when this module is imported: a misspelt one
would otherwise be dropped silently by `model_dump(include=...)`, and the key would stop
changing when that section does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assay.compression.stage import CompressionOutcome, compress_stage
from assay.config import Spec
from assay.errors import SpecError
from assay.modeling.teacher import PretrainOutcome, TeacherOutcome, finetune_stage, pretrain_stage
from assay.responsible import stage as responsible
from assay.responsible.stage import Calibration, Explanations, FairnessOutcome, ResponsibleOutcome
from assay.training import FittedBaseline, GateResult, data_gate, fit_and_score_baseline


@dataclass(frozen=True)
class Stage:
    name: str
    sections: tuple[str, ...]  # besides the data sections (Spec.stage_digest)
    function: Callable[..., Any]  # the library function that does its work (its task calls it)
    outcome: type


# "privacy": under a private spec every DP-SGD stage's key covers every stage's plan
# (Spec.stage_digest); without one the keys are as before.
_TEACHER = ("train_rows", "model", "pretrain", "finetune", "privacy", "federation", "augment")
_STUDENT = (*_TEACHER, "baseline", "compression")  # the student learns from the references too
_RESPONSIBLE = ("sensitive_features", "fairness", "decision", "uncertainty", "explanations")

TABLE: tuple[Stage, ...] = (
    Stage("data-gate", (), data_gate, GateResult),  # keyed by the snapshot with the suite's digest
    Stage("baseline", ("train_rows", "baseline"), fit_and_score_baseline, FittedBaseline),
    Stage(
        "pretrain", ("train_rows", "model", "pretrain", "privacy"), pretrain_stage, PretrainOutcome
    ),
    Stage("finetune", _TEACHER, finetune_stage, TeacherOutcome),
    Stage("compress", _STUDENT, compress_stage, CompressionOutcome),
    Stage("calibrate", _STUDENT, responsible.calibrate_stage, Calibration),
    Stage(
        "conformal",
        # the small-group flag only: a changed fairness gate or mitigation keeps its coverage
        (*_STUDENT, "sensitive_features", "fairness.min_group_size", "uncertainty"),
        responsible.conformal_stage,
        dict,
    ),
    Stage(
        "fairness",
        (*_STUDENT, "sensitive_features", "fairness", "decision"),
        responsible.fairness_stage,
        FairnessOutcome,
    ),
    Stage("explain", (*_STUDENT, "explanations"), responsible.explain_stage, Explanations),
    Stage("responsible", (*_STUDENT, *_RESPONSIBLE), responsible.package_stage, ResponsibleOutcome),
)
STAGES: dict[str, Stage] = {stage.name: stage for stage in TABLE}


def check_sections(table: tuple[Stage, ...], fields: dict[str, Any]) -> None:
    """Every section a stage names must be a field of the spec (`section.field`: a field of
    that section's model)."""
    for stage in table:
        unknown = sorted(name for name in stage.sections if not _is_field(name, fields))
        if unknown:
            raise SpecError(f"stage {stage.name}: {unknown} are not sections of the spec")


def _is_field(name: str, fields: dict[str, Any]) -> bool:
    section, _, field = name.partition(".")
    if section not in fields:
        return False
    model = fields[section].annotation
    return not field or field in getattr(model, "model_fields", {})


check_sections(TABLE, Spec.model_fields)
