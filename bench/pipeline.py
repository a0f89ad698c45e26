"""Benchmark: the whole `train` flow on the spec's bundled data, cold (an empty ASSAY_HOME) and
warm (the same data again), each in a fresh process. Reports per-stage seconds (the time each
Prefect task run spent running), total seconds of the flow, peak memory (RSS of the process),
and the share of the flow's time outside every stage: Prefect's orchestration overhead. The
bundled files are ingested first, in their own process, and timed apart. The last line printed
is JSON.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Targets: cold within 15 min on 2 cores, warm within 5% of cold, orchestration within 5% of cold
COLD_SECONDS_MAX = 15 * 60
WARM_SHARE_MAX = 0.05
ORCHESTRATION_SHARE_MAX = 0.05


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end] intervals: stages that ran at once count once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def measure(step: str, spec_path: str, home: Path, profile: str | None) -> dict:
    """Run one step in this process (the child): its wall time, stage times, peak RSS."""
    from assay.home import Home
    from cli.main import prepare_environment

    prepare_environment(Home(home))
    os.environ["ASSAY_PROGRESS"] = "0"
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.ingest import ingest
    from flows.train import train

    started = time.perf_counter()
    if step == "ingest":
        from assay.config import load_spec

        paths = [str(p) for p in load_spec(spec_path).bundled]
        state = ingest(paths, spec_path, str(home), return_state=True)
    else:
        state = train(spec_path, str(home), profile, return_state=True)
    wall = time.perf_counter() - started
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
        )
    stages: dict[str, float] = {}
    intervals = []
    for run in runs:
        if run.start_time is None or run.end_time is None:
            continue  # never ran (cached runs still get both)
        name = run.name.rsplit("-", 1)[0]
        stages[name] = stages.get(name, 0.0) + (run.end_time - run.start_time).total_seconds()
        intervals.append((run.start_time.timestamp(), run.end_time.timestamp()))
    flow_seconds = (flow_run.end_time - flow_run.start_time).total_seconds()
    busy = busy_seconds(intervals)
    return {
        "step": step,
        "state": state.type.value,
        "wall_seconds": round(wall, 2),
        "flow_seconds": round(flow_seconds, 2),
        "stage_seconds": {k: round(v, 2) for k, v in sorted(stages.items())},
        "busy_seconds": round(busy, 2),
        "orchestration_seconds": round(flow_seconds - busy, 2),
        "cached": sorted(r.name.rsplit("-", 1)[0] for r in runs if r.state_name == "Cached"),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def child(step: str, spec_path: str, home: Path, profile: str | None) -> dict:
    """One step in a fresh interpreter, so its peak memory is its own."""
    command = [sys.executable, "-m", "bench.pipeline", step, spec_path, str(home), profile or ""]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{step} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(spec_path: str, profile: str | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as scratch:
        home = Path(scratch) / "home"
        ingest = child("ingest", spec_path, home, profile)
        cold = child("train", spec_path, home, profile)
        warm = child("train", spec_path, home, profile)
    for run in (cold, warm):
        label = "cold" if run is cold else "warm"
        print(f"{label}: flow {run['flow_seconds']:.1f} s, peak {run['peak_rss_mb']} MB RSS")
        for name, seconds in run["stage_seconds"].items():
            print(f"  {name:24} {seconds:8.2f} s")
    result = {
        "bench": "pipeline",
        "profile": profile or "full",
        "cores": os.cpu_count(),
        "ingest_seconds": ingest["flow_seconds"],
        "cold": cold,
        "warm": warm,
        "warm_share_of_cold": round(warm["flow_seconds"] / cold["flow_seconds"], 4),
        "orchestration_share_of_cold": round(
            cold["orchestration_seconds"] / cold["flow_seconds"], 4
        ),
        "targets": {
            "cold_seconds_max": COLD_SECONDS_MAX,
            "warm_share_max": WARM_SHARE_MAX,
            "orchestration_share_max": ORCHESTRATION_SHARE_MAX,
        },
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    step, spec, home_path, profile_name = sys.argv[1:5]
    print(json.dumps(measure(step, spec, Path(home_path), profile_name or None)))
