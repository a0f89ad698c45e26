"""The table of stages, in the order a training runs them: adding a stage is one module in
this package (declaring `STAGE`) and one line in ORDER. The sections each names are checked
against the Spec model when this module is imported: a misspelt one would otherwise be
dropped silently by `model_dump(include=...)`, and the key would stop changing when that
section does."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from assay.config import Spec
from assay.errors import SpecError
from assay.stages.stage import Stage

# The stage modules of this package, in order
ORDER = (
    "data_gate",  # keyed by the snapshot with the suite's digest; judges before the split
    "baseline",
    "pretrain",
    "finetune",
    "compress",
    "calibrate",
    "conformal",
    "fairness",
    "explain",
    "responsible",
)
TABLE: tuple[Stage, ...] = tuple(import_module(f"{__package__}.{name}").STAGE for name in ORDER)
STAGES: dict[str, Stage] = {stage.name: stage for stage in TABLE}


def check_table(table: tuple[Stage, ...], fields: dict[str, Any]) -> None:
    """Every section a stage names must be a field of the spec (`section.field`: a field of
    that section's model), and every input a stage before it."""
    seen: set[str] = set()
    for stage in table:
        unknown = sorted(name for name in stage.sections if not _is_field(name, fields))
        if unknown:
            raise SpecError(f"stage {stage.name}: {unknown} are not sections of the spec")
        missing = [name for name in stage.inputs if name not in seen]
        if missing:
            raise SpecError(f"stage {stage.name}: its inputs {missing} are not stages before it")
        seen.add(stage.name)


def _is_field(name: str, fields: dict[str, Any]) -> bool:
    section, _, field = name.partition(".")
    if section not in fields:
        return False
    model = fields[section].annotation
    return not field or field in getattr(model, "model_fields", {})


check_table(TABLE, Spec.model_fields)
