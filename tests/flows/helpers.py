"""Reading what Prefect recorded about a flow run (task states, artifacts) and events."""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.states import State


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


def events(*names: str) -> list[object]:
    """Events of these names the API has stored (what the UI's event feed shows)."""
    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(event=EventNameFilter(name=list(names))), limit=50
        )
    return page.events
