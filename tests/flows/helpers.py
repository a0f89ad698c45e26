"""Reading what Prefect recorded about a flow run (task states, artifacts) and events; variants
of the Adult spec."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.states import State

from tests.conftest import ADULT_SPEC


def task_runs(state: State) -> dict[str, object]:
    """Task runs of the flow run behind `state`, by task name (last run of each name wins)."""
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {run.name.rsplit("-", 1)[0]: run for run in runs}


def artifacts(state: State) -> dict[str, object]:
    """Artifacts the flow run behind `state` published, by key."""
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found}


def artifacts_by_key(key: str) -> list[object]:
    """Every artifact the API holds under `key`, from any flow run."""
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )


def events(*names: str) -> list[object]:
    """Events of these names the API has stored (what the UI's event feed shows)."""
    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(event=EventNameFilter(name=list(names))), limit=50
        )
    return page.events


def wait_for_events(*names: str, seconds: float = 20.0) -> list:
    """Events reach the API's store shortly after they are emitted."""
    deadline = time.monotonic() + seconds
    while True:
        seen = events(*names)
        if {e.event for e in seen} >= set(names) or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def adult_variant(path: Path, change: Callable[[dict], None]) -> Path:
    """The Adult spec with `change` applied, written to `path`: no bundled files, the suite by
    absolute path (the variant lives elsewhere)."""
    spec = yaml.safe_load(ADULT_SPEC.read_text())
    spec["expectations"] = str((ADULT_SPEC.parent / spec["expectations"]).resolve())
    spec["bundled"] = []
    change(spec)
    path.write_text(yaml.safe_dump(spec))
    return path


def wider_promotion_margin(spec: dict) -> None:
    """A registry setting only: every stage stays cached, the candidate is new."""
    spec["registry"] = {"promotion_margin": 0.01}
