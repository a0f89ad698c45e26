"""assay's deployments as Prefect objects, read from deployments/prefect.yaml.

The same file drives both ways of running them: `prefect deploy` reads it for a work pool, and
`assay serve` turns each entry into a RunnerDeployment here, so schedules, triggers, parameters
and concurrency are edited in one place, never in code.
"""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron, Interval, Schedule

from assay.errors import SpecError

DEPLOYMENTS_FILE = Path(__file__).with_name("prefect.yaml")


def load_flow(entrypoint: str) -> Flow:
    """`flows/ingest.py:ingest` -> the flow object, imported as a module of this package."""
    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def schedule(raw: dict[str, Any]) -> Schedule:
    """A prefect.yaml schedule entry: `cron` (with optional timezone) or `interval` seconds."""
    active = raw.get("active", True)
    if "cron" in raw:
        return Cron(raw["cron"], timezone=raw.get("timezone"), active=active)
    if "interval" in raw:
        return Interval(timedelta(seconds=raw["interval"]), active=active)
    raise SpecError(f"schedule {raw}: give `cron` or `interval` (seconds)")


def trigger(raw: dict[str, Any]) -> DeploymentEventTrigger:
    """A prefect.yaml `type: event` trigger; anything else is refused by name."""
    if raw.get("type", "event") != "event":
        raise SpecError(f"trigger {raw}: only `type: event` triggers are supported")
    return DeploymentEventTrigger(**{k: v for k, v in raw.items() if k != "type"})


def runner_deployments(
    parameters: dict[str, Any], path: Path = DEPLOYMENTS_FILE
) -> list[RunnerDeployment]:
    """Every deployment in the file, with `parameters` (spec, home, profile) laid over each
    entry's own; a flow that does not take one of them does not get it."""
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))["deployments"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: no readable `deployments:` list ({exc})") from None
    deployments = []
    for entry in entries:
        flow = load_flow(entry["entrypoint"])
        accepted = flow.parameters.properties
        given = {k: v for k, v in parameters.items() if k in accepted and v is not None}
        limit = entry.get("concurrency_limit")
        deployments.append(
            flow.to_deployment(
                name=entry["name"],
                description=entry.get("description"),
                parameters={**entry.get("parameters", {}), **given},
                schedules=[schedule(s) for s in entry.get("schedules") or []],
                triggers=[trigger(t) for t in entry.get("triggers") or []],
                concurrency_limit=ConcurrencyLimitConfig(**limit) if limit else None,
            )
        )
    return deployments
