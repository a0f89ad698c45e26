"""What a stage is: its one name (its Prefect task, its folder `stages/<name>/<key>/`, its cache
record, its MLflow nested run and the prefix `<name>.` of the figures it logs), the spec
sections its cache key covers, the stages whose outcomes it takes, the function that runs it,
the type of its outcome, and how that outcome reports itself: figures, per-epoch curves, files
for its nested run, the folder the parent run keeps, gate verdicts and what the Prefect UI
shows. Every other place (tasks, MLflow payload, artifacts, gates, run names, metric prefixes)
iterates over the table of these (assay.stages.table) instead of naming stages.

The UI reports are plain values (Table, Markdown, Image): the shell publishes them as Prefect
artifacts, so the library stays free of Prefect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Table:
    key: str
    rows: list[dict]
    description: str


@dataclass(frozen=True)
class Markdown:
    key: str
    text: str


@dataclass(frozen=True)
class Image:
    key: str  # made unique among a run's artifact keys by the shell
    path: Path  # a PNG
    description: str


Report = Table | Markdown | Image


def _no_values(outcome: Any) -> dict:
    return {}


def _no_items(outcome: Any) -> list:
    return []


def _no_folder(outcome: Any) -> Path | None:
    return None


@dataclass(frozen=True)
class Stage:
    """One stage. `run(folder, *given)` does its work in `folder`; `given` is what the flow
    hands it: the split, the spec and the outcomes of `inputs`, in order (the data gate, which
    runs before the split: the batches and the suite)."""

    name: str
    sections: tuple[str, ...]  # besides the data sections (Spec.stage_digest)
    inputs: tuple[str, ...]  # the stages whose outcomes `run` takes after the split and spec
    run: Callable[..., Any]
    outcome: type
    figures: Callable[[Any], dict[str, Any]] = _no_values  # logged as `<name>.<figure>`
    curves: Callable[[Any], dict[str, list[float]]] = _no_values  # per epoch
    files: Callable[[Any], list[tuple[str, Path]]] = _no_items  # (folder, file) in its run
    kept: Callable[[Any], Path | None] = _no_folder  # the folder the parent run copies
    gates: Callable[[Any], dict[str, dict]] = _no_values  # verdicts by gate name
    reports: Callable[[Any], list[Report]] = _no_items  # what the Prefect UI shows


def folder_of(given: Any) -> Path:
    """The folder of an upstream stage: its outcome's, or the folder itself (the benchmarks
    compose the steps on folders they made)."""
    return given if isinstance(given, Path) else Path(given.folder)
