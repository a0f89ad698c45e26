"""assay's deployments as Prefect objects, read from deployments/prefect.yaml.

The same file drives both ways of running them: `prefect deploy` reads it for a work pool, and
`assay serve` turns each entry into a RunnerDeployment here, so schedules, triggers, parameters
and concurrency are edited in one place, never in code. The file is a template with the dataset
as a variable (`{{ $ASSAY_DATASET }}`, `{{ $ASSAY_SPEC }}`); both fill it in with Prefect's
own templating, from the environment, so a served deployment is the one `prefect deploy` makes.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron, Interval, Schedule
from prefect.utilities.templating import apply_values

from assay.errors import SpecError

DEPLOYMENTS_FILE = Path(__file__).with_name("prefect.yaml")
DATASET_VARIABLE, SPEC_VARIABLE = "ASSAY_DATASET", "ASSAY_SPEC"


def load_flow(entrypoint: str) -> Flow:
    """`flows/ingest.py:ingest` -> the flow object, imported as a module of this package."""
    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def schedule(raw: dict[str, Any]) -> Schedule:
    """A prefect.yaml schedule entry: `cron` (with optional timezone) or `interval` seconds
    (with optional `anchor_date`, when the count starts, and timezone)."""
    active = raw.get("active", True)
    if "cron" in raw:
        return Cron(raw["cron"], timezone=raw.get("timezone"), active=active)
    if "interval" in raw:
        anchor = raw.get("anchor_date")  # fixed, or each serve would start the count anew
        return Interval(
            timedelta(seconds=raw["interval"]),
            anchor_date=datetime.fromisoformat(str(anchor)) if anchor else None,
            timezone=raw.get("timezone"),
            active=active,
        )
    raise SpecError(f"schedule {raw}: give `cron` or `interval` (seconds)")


def trigger(raw: dict[str, Any]) -> DeploymentEventTrigger:
    """A prefect.yaml `type: event` trigger; anything else is refused by name."""
    if raw.get("type", "event") != "event":
        raise SpecError(f"trigger {raw}: only `type: event` triggers are supported")
    return DeploymentEventTrigger(**{k: v for k, v in raw.items() if k != "type"})


def read_entries(path: Path = DEPLOYMENTS_FILE) -> list[dict[str, Any]]:
    """The file's `deployments:` list, as written (placeholders unfilled)."""
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))["deployments"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: no readable `deployments:` list ({exc})") from None
    if not isinstance(entries, list):
        raise SpecError(f"{path}: `deployments:` is not a list")
    return entries


@contextmanager
def dataset_variables(dataset: str, spec_path: str) -> Iterator[None]:
    """The environment `prefect deploy` would be run with for this dataset, for the block."""
    saved = {name: os.environ.get(name) for name in (DATASET_VARIABLE, SPEC_VARIABLE)}
    os.environ[DATASET_VARIABLE], os.environ[SPEC_VARIABLE] = dataset, spec_path
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def filled_entries(dataset: str, spec_path: str, path: Path = DEPLOYMENTS_FILE) -> list[dict]:
    """The file's entries for one dataset, filled in as `prefect deploy` fills them (event
    placeholders such as `{{ event.payload.paths }}` are left for the trigger). Every entry
    must be named after the dataset: two datasets would otherwise share a deployment."""
    entries = read_entries(path)
    with dataset_variables(dataset, spec_path):
        filled = [apply_values(entry, os.environ, remove_notset=False) for entry in entries]
    for entry in filled:
        if entry.get("name") != dataset:
            raise SpecError(
                f"{path}: the deployment of {entry.get('entrypoint')} is named "
                f"{entry.get('name')!r}, not after its dataset: name every deployment "
                f'"{{{{ ${DATASET_VARIABLE} }}}}" so that each dataset gets its own'
            )
    return filled


def runner_deployments(
    dataset: str, parameters: dict[str, Any], path: Path = DEPLOYMENTS_FILE
) -> list[RunnerDeployment]:
    """Every deployment in the file for one dataset, with `parameters` (spec, home, profile)
    laid over each entry's own; a flow that does not take one of them does not get it."""
    deployments = []
    for entry in filled_entries(dataset, str(parameters["spec_path"]), path):
        flow = load_flow(entry["entrypoint"])
        accepted = flow.parameters.properties
        given = {k: v for k, v in parameters.items() if k in accepted and v is not None}
        limit = entry.get("concurrency_limit")
        deployments.append(
            flow.to_deployment(
                name=entry["name"],
                description=entry.get("description"),
                parameters={**entry.get("parameters", {}), **given},
                tags=entry.get("tags") or [],
                schedules=[schedule(s) for s in entry.get("schedules") or []],
                triggers=[trigger(t) for t in entry.get("triggers") or []],
                concurrency_limit=ConcurrencyLimitConfig(**limit) if limit else None,
            )
        )
    return deployments
