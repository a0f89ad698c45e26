"""`assay status`: one screen per dataset, from what the home and MLflow hold (the Prefect
shell adds the flow runs: deployments/status.py).

Per dataset: the champion and challenger versions, the last training MLflow recorded (when, and
what its gates decided), the batches accepted since the last training, and the last drift
check. Reading never creates anything: a dataset with no registry yet shows as such.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from assay.data.store import BatchStore
from assay.home import Home
from assay.monitoring.policy import LastTraining, new_batches
from assay.registry.models import holder
from assay.registry.tracking import has_registry, tracking_uri

ALIASES = ("champion", "challenger")


@dataclass
class DatasetStatus:
    """What an operator asks first about one dataset; `flows` and `last_run` come from
    Prefect (empty when it was not asked or not reachable)."""

    dataset: str
    model: str
    champion: str | None = None
    challenger: str | None = None
    last_training: dict[str, Any] | None = None  # MLflow: at, run, gates, decision
    batches_since: int = 0
    rows_since: int = 0
    last_drift: dict[str, Any] | None = None  # MLflow: at, scope, detected, top feature
    last_run: dict[str, Any] | None = None  # Prefect: the last train flow run
    flows: list[dict[str, Any]] = field(default_factory=list)  # Prefect: queued or running

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def home_datasets(home: Home) -> list[str]:
    """The datasets this home holds state for (its namespaces), by name."""
    root = home.root / "datasets"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def dataset_status(home: Home, dataset: str, model: str) -> DatasetStatus:
    """The home's and MLflow's part of one dataset's status (`model`: its registered name)."""
    where = home.for_dataset(dataset)
    fresh = new_batches(BatchStore(where.batches), LastTraining.load(where.last_training))
    found = DatasetStatus(
        dataset, model, batches_since=len(fresh), rows_since=sum(r.rows for r in fresh)
    )
    if not has_registry(home):
        return found  # no registry yet: nothing trained
    client = MlflowClient(tracking_uri(home))
    found.champion, found.challenger = (holder(home, model, alias) for alias in ALIASES)
    training = latest_run(client, f"assay-{dataset}")
    if training is not None:
        found.last_training = training_summary(client, model, training)
    check = latest_run(client, f"assay-{dataset}-monitoring")
    if check is not None:
        found.last_drift = drift_summary(check)
    return found


def registered_name(home: Home, dataset: str) -> str:
    """The registered model of a dataset known only by name: the one its versions name (a
    spec may choose `registry.model_name`), else the default `assay-<name>`."""
    default = f"assay-{dataset}"
    if not has_registry(home):
        return default
    client = MlflowClient(tracking_uri(home))
    versions = client.search_model_versions(f"tags.`assay.spec` = '{dataset}'", max_results=1)
    return versions[0].name if versions else default


def latest_run(client: MlflowClient, experiment: str) -> Run | None:
    """The experiment's newest top-level run (a training's stages are nested runs in it)."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id], order_by=["attributes.start_time DESC"], max_results=100
    )
    return next((r for r in runs if "mlflow.parentRunId" not in r.data.tags), None)


def training_summary(client: MlflowClient, model: str, run: Run) -> dict[str, Any]:
    """When the last training ended, which gates failed, and what the registry decided."""
    tags = run.data.tags
    failed = sorted(
        k.removeprefix("assay.gate.")
        for k, v in tags.items()
        if k.startswith("assay.gate.") and v == "failed"
    )
    versions = client.search_model_versions(f"name = '{model}' and run_id = '{run.info.run_id}'")
    decision = versions[0].tags.get("assay.decision") if versions else None
    return {
        "at": _when(run.info.end_time or run.info.start_time),
        "run": run.info.run_id,
        "version": str(versions[0].version) if versions else None,
        "failed_gates": failed,
        "decision": decision,
    }


def drift_summary(run: Run) -> dict[str, Any]:
    """The last drift check: its scope, verdict, and the feature that moved most."""
    metrics = run.data.metrics
    psi = {k.split(".psi.", 1)[1]: v for k, v in metrics.items() if ".drift.psi." in f".{k}"}
    top = max(psi, key=psi.get) if psi else None
    return {
        "at": _when(run.info.end_time or run.info.start_time),
        "scope": run.data.tags.get("mlflow.runName", ""),
        "detected": run.data.tags.get("assay.drift") == "detected",
        "top_feature": top,
        "top_psi": round(psi[top], 4) if top else None,
    }


def _when(millis: int) -> str:
    return dt.datetime.fromtimestamp(millis / 1000, dt.UTC).isoformat(timespec="seconds")


def render(statuses: list[DatasetStatus], prefect: str) -> str:
    """The one-screen text view; `prefect` says where flow runs were read from (or why not)."""
    lines = []
    for s in statuses:
        lines.append(f"{s.dataset}  ({s.model})")
        lines.append(f"  champion {_v(s.champion)}   challenger {_v(s.challenger)}")
        lines.append(f"  last training: {_training(s)}")
        lines.append(f"  since then: {s.batches_since} batch(es), {s.rows_since:,} rows")
        lines.append(f"  last drift check: {_drift(s.last_drift)}")
        active = ", ".join(f"{f['flow']} {f['state'].lower()} ({f['run']})" for f in s.flows)
        lines.append(f"  flows queued or running: {active or 'none'}")
    lines.append(f"flow runs read from {prefect}")
    return "\n".join(lines)


def _v(version: str | None) -> str:
    return f"v{version}" if version else "none"


def _training(s: DatasetStatus) -> str:
    parts = []
    if s.last_run:
        parts.append(f"{s.last_run['state']} at {s.last_run['at']}")
    if s.last_training:
        t = s.last_training
        gates = (
            f"failed: {', '.join(t['failed_gates'])}" if t["failed_gates"] else "every gate passed"
        )
        made = f"v{t['version']} {t['decision']}" if t["version"] else "no version"
        parts.append(f"MLflow run {t['run'][:12]} ended {t['at']}: {gates}; {made}")
    return "; ".join(parts) or "none"


def _drift(d: dict[str, Any] | None) -> str:
    if not d:
        return "none"
    verdict = "DRIFT" if d["detected"] else "no drift"
    top = f", most moved {d['top_feature']} (PSI {d['top_psi']})" if d["top_feature"] else ""
    return f"{verdict} at {d['at']} on {d['scope']}{top}"
