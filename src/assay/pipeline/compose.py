"""The one composition of the stages, for the flow and the benchmarks alike: each stage runs on
the outcomes of the stages its table entry names as inputs. The flow hands it a function that
submits each stage as a Prefect task (and gets futures back, so independent stages run side by
side); `responsible_stage` one that calls each step's function in turn."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from assay.config import Spec
from assay.data.split import Split
from assay.stages import compress
from assay.stages.responsible import ResponsibleOutcome
from assay.stages.stage import Stage
from assay.stages.table import TABLE

T = TypeVar("T")


def run_stages(
    run: Callable[..., T], stages: Iterable[Stage], given: dict[str, Any]
) -> dict[str, T]:
    """`run(stage, *inputs)` for each of `stages` in turn, its inputs taken from `given` or
    from what a stage before it gave; every outcome by stage name."""
    done: dict[str, Any] = dict(given)
    for stage in stages:
        done[stage.name] = run(stage, *(done[name] for name in stage.inputs))
    return done


def stages_after(name: str) -> tuple[Stage, ...]:
    """The stages the table lists after `name`."""
    names = [stage.name for stage in TABLE]
    return TABLE[names.index(name) + 1 :]


def responsible_stage(
    split: Split, spec: Spec, compressed: Path, folder: Path
) -> ResponsibleOutcome:
    """Every stage after compression in turn on a compressed folder, all in one folder (the
    flow runs them as separate tasks): what the benchmarks run."""

    def run(stage: Stage, *inputs: Any) -> Any:
        return stage.run(folder, split, spec, *inputs)

    done = run_stages(run, stages_after(compress.NAME), {compress.NAME: compressed})
    return done[TABLE[-1].name]
