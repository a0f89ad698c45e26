"""`assay status`: the Prefect half (flow runs by dataset tag) over the library's half
(assay.status: registry, store, drift checks).

Flow runs are read from PREFECT_API_URL, else from the home's own Prefect database through
Prefect's temporary API (the one `assay run` and an SQLite `assay serve` write to).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import PREFECT_API_URL

from assay.status import DatasetStatus
from flows.dataset import dataset_tag

FINAL = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]
ACTIVE = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED]


def source() -> str:
    """Where the flow runs are read from, in words."""
    url = PREFECT_API_URL.value()
    return url or "the home's Prefect database (set PREFECT_API_URL to read a running server)"


def add_flow_runs(statuses: list[DatasetStatus]) -> str | None:
    """Fill in each dataset's last train run and its queued or running flows; None when done,
    else why Prefect could not be read (the rest of the status still stands)."""
    try:
        with get_client(sync_client=True) as client:
            names = {f.id: f.name for f in client.read_flows()}
            for status in statuses:
                tag = FlowRunFilterTags(all_=[dataset_tag(status.dataset)])
                last = client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=["train"])),
                    flow_run_filter=FlowRunFilter(
                        tags=tag, state=FlowRunFilterState(type=FlowRunFilterStateType(any_=FINAL))
                    ),
                    sort=FlowRunSort.END_TIME_DESC,
                    limit=1,
                )
                if last:
                    status.last_run = describe(last[0], names)
                active = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        tags=tag, state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE))
                    ),
                    sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                    limit=200,
                )
                status.flows = [describe(r, names) for r in active if due(r)]
    except (httpx.HTTPError, RuntimeError, OSError) as exc:
        return f"Prefect could not be read at {source()}: {exc}"
    return None


def due(run: FlowRun) -> bool:
    """Queued or running now: a scheduled run counts once its start time has come (late, or
    waiting for a concurrency slot), not while it is hours ahead."""
    if run.state_type != StateType.SCHEDULED or run.expected_start_time is None:
        return True
    return run.expected_start_time <= dt.datetime.now(dt.UTC)


def describe(run: FlowRun, flows: dict[Any, str]) -> dict[str, Any]:
    when = run.end_time or run.start_time or run.expected_start_time
    return {
        "flow": flows.get(run.flow_id, "?"),
        "run": run.name,
        "state": run.state_name or str(run.state_type),
        "at": when.isoformat(timespec="seconds") if when else None,
        "message": (run.state.message or "") if run.state else "",
    }
