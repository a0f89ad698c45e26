"""The cached stages of a training, in one table: each stage's one name (its Prefect task, its
folder `stages/<name>/<key>/`, its Prefect cache record, its MLflow nested run and the prefix
`<name>.` of the figures it logs), the spec sections its cache key covers besides the data
sections, and the type of its outcome.

The sections are checked against the Spec model when this module is imported: a misspelt one
would otherwise be dropped silently by `model_dump(include=...)`, and the key would stop
changing when that section does.
"""

from __future__ import annotations

from dataclasses import dataclass

from assay.compression.stage import CompressionOutcome
from assay.config import Spec
from assay.errors import SpecError
from assay.modeling.teacher import PretrainOutcome, TeacherOutcome
from assay.responsible.stage import Calibration, Explanations, FairnessOutcome, ResponsibleOutcome
from assay.training import FittedBaseline, GateResult


@dataclass(frozen=True)
class Stage:
    name: str
    sections: tuple[str, ...]  # besides the data sections (Spec.stage_digest)
    outcome: type


_TEACHER = ("train_rows", "model", "pretrain", "finetune")
_STUDENT = (*_TEACHER, "compression")
_RESPONSIBLE = ("sensitive_features", "fairness", "decision", "uncertainty", "explanations")

TABLE: tuple[Stage, ...] = (
    Stage("data-gate", (), GateResult),  # keyed by the snapshot with the suite's digest
    Stage("baseline", ("baseline",), FittedBaseline),
    Stage("pretrain", ("train_rows", "model", "pretrain"), PretrainOutcome),
    Stage("finetune", _TEACHER, TeacherOutcome),
    Stage("compress", _STUDENT, CompressionOutcome),
    Stage("calibrate", _STUDENT, Calibration),
    Stage("conformal", (*_STUDENT, "uncertainty"), dict),
    Stage("fairness", (*_STUDENT, "sensitive_features", "fairness", "decision"), FairnessOutcome),
    Stage("explain", (*_STUDENT, "explanations"), Explanations),
    Stage("responsible", (*_STUDENT, *_RESPONSIBLE), ResponsibleOutcome),
)
STAGES: dict[str, Stage] = {stage.name: stage for stage in TABLE}


def check_sections(table: tuple[Stage, ...], fields: set[str]) -> None:
    """Every section a stage names must be a field of the spec."""
    for stage in table:
        unknown = sorted(set(stage.sections) - fields)
        if unknown:
            raise SpecError(f"stage {stage.name}: {unknown} are not sections of the spec")


check_sections(TABLE, set(Spec.model_fields))
