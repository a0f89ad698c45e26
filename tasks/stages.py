"""Each stage of the table (assay.stages.table) as one cached Prefect task, made by one
factory: the task runs the stage's function in the stage's folder for its key and publishes
what the stage reports. A stage needs no task of its own; the shell adds only what it alone
can give (the federation's exchange and sites, for fine-tuning)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import Task, task
from prefect.artifacts import (
    create_image_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from assay.config import Spec
from assay.home import Home
from assay.responsible.plots import png_data_url
from assay.stages import finetune
from assay.stages.stage import Image, Markdown, Report, Stage, Table
from assay.stages.table import TABLE
from tasks import federated
from tasks.artifacts import artifact_keys
from tasks.policy import CACHED

# What the shell adds to a stage's inputs: (home, key, *the stage's given) -> keyword arguments
ShellInputs = Callable[..., dict[str, Any]]


def _sites(home: Home, key: str, split: Any, spec: Spec, *inputs: Any) -> dict[str, Any]:
    """A federated spec's fine-tuning asks its sites through Prefect deployments."""
    if spec.federation is None:
        return {}
    exchange = federated.exchange_of(home)
    return {"federation": (exchange, federated.asker(spec, exchange, key))}


SHELL_INPUTS: dict[str, ShellInputs] = {finetune.NAME: _sites}


def stage_task(stage: Stage) -> Task:
    """The stage as a task: cached per (its key, the suite when it validates, the home, the
    library's code), JSON results, retried on transient failures."""

    def run_stage(fingerprint: str, home: Home, given: tuple, suite_digest: str = "") -> Any:
        """`given`: the stage's inputs (assay.stages.stage.Stage.run)."""
        folder = home.stage_dir(stage.name, fingerprint)
        extra = SHELL_INPUTS.get(stage.name)
        shell = extra(home, fingerprint, *given) if extra else {}
        outcome = stage.run(folder, *given, **shell)
        publish(stage.reports(outcome))
        return outcome

    run_stage.__doc__ = f"The {stage.name} stage ({stage.run.__module__})."
    return task(name=stage.name, **CACHED)(run_stage)


STAGE_TASKS: dict[str, Task] = {stage.name: stage_task(stage) for stage in TABLE}


def current(stage: Stage, home: Home, key: str) -> Task:
    """A cached stage's task for this run: when its folder is gone (deleted, or never written)
    it runs and its cache record is written anew, since a hit would point at files that are not
    there. The folder's path depends only on the key, so the new record replaces the old."""
    cached = STAGE_TASKS[stage.name]
    if not home.stage_dir(stage.name, key).is_dir():
        return cached.with_options(refresh_cache=True)
    return cached


def publish(reports: list[Report]) -> None:
    """A stage's reports as Prefect artifacts (image keys made valid and unique)."""
    keys = artifact_keys(r.key for r in reports if isinstance(r, Image))
    for report in reports:
        if isinstance(report, Table):
            create_table_artifact(key=report.key, table=report.rows, description=report.description)
        elif isinstance(report, Markdown):
            create_markdown_artifact(key=report.key, markdown=report.text)
        else:
            create_image_artifact(
                image_url=png_data_url(Path(report.path)),
                key=keys[report.key],
                description=report.description,
            )
