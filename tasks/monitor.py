"""Prefect tasks for monitoring: what new rows to check, the check itself with its artifacts,
its MLflow record, and the events that start a retrain or alert an operator."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from assay.config import Spec
from assay.data.store import BatchRecord, BatchStore
from assay.home import Home
from assay.monitoring.check import Reference, RowsCheck, check_rows, reference_package
from assay.monitoring.policy import LastTraining, new_batches, retrain_reason
from assay.registry.tracking import log_run
from tasks.events import DRIFT_DETECTED, RETRAIN_REQUESTED, about_dataset
from tasks.policy import IO_RETRIES, UNCACHED


@task(name="find-reference", **IO_RETRIES)
def reference(home: Home, spec: Spec) -> Reference | None:
    return reference_package(home, spec)


@task(name="batches-since-training", **IO_RETRIES)
def since_training(home: Home) -> list[BatchRecord]:
    """Every batch accepted after the last training."""
    return new_batches(BatchStore(home.batches), LastTraining.load(home.last_training))


@task(name="load-rows", **IO_RETRIES)
def rows_of(home: Home, batches: list[str]) -> pd.DataFrame:
    """The rows of these accepted batches, together."""
    store = BatchStore(home.batches)
    return pd.concat([store.load(b) for b in batches], ignore_index=True)


@task(name="check-rows", **UNCACHED)
def check(frame: pd.DataFrame, spec: Spec, ref: Reference, scope: str) -> RowsCheck:
    """Drift and live performance, published as a table a reviewer can read in the UI."""
    found = check_rows(frame, spec, ref)
    create_table_artifact(
        key="drift",
        table=found.drift.table(),
        description=f"**{scope}**: {found.reason}",
    )
    if found.live:
        create_table_artifact(
            key="live-performance",
            table=[
                {"measure": "accuracy", "value": round(found.live.accuracy, 4)},
                {"measure": "champion test accuracy", "value": found.live.reference_accuracy},
                *(
                    {"measure": f"{metric} ({feature})", "value": round(value, 4)}
                    for feature, gaps in found.live.fairness.items()
                    for metric, value in gaps.items()
                ),
            ],
            description=found.live.reason,
        )
    return found


@task(name="log-check", **IO_RETRIES)
def log_check(home: Home, spec: Spec, found: RowsCheck, scope: str) -> str:
    """One MLflow run per check in the dataset's monitoring experiment."""
    return log_run(
        home,
        experiment=f"assay-{spec.name}-monitoring",
        run_name=scope,
        params={"reference": found.reference, "scope": scope},
        metrics=found.metrics(),
        tags={"assay.spec": spec.name, "assay.drift": "detected" if found.detected else "none"},
    )


@task(name="alert", **IO_RETRIES)
def alert(spec: Spec, found: RowsCheck, scope: str) -> None:
    """`assay.drift.detected` with the evidence; the UI's event feed shows it."""
    about_dataset(
        DRIFT_DETECTED,
        spec.name,
        {
            "scope": scope,
            "reason": found.reason,
            "drifted": found.drift.drifted,
            "live_degraded": bool(found.live and found.live.degraded),
        },
    )


@task(name="retrain-policy", **IO_RETRIES)
def request_retrain(home: Home, spec: Spec, drifted: bool) -> str | None:
    """Emit `assay.retrain.requested` when the new rows or drift call for it; say why."""
    new_rows = sum(
        r.rows for r in new_batches(BatchStore(home.batches), LastTraining.load(home.last_training))
    )
    reason = retrain_reason(new_rows, drifted, spec)
    if reason:
        about_dataset(RETRAIN_REQUESTED, spec.name, {"reason": reason, "new_rows": new_rows})
    create_markdown_artifact(
        key="retrain-policy",
        markdown=f"**retrain requested**: {reason}"
        if reason
        else f"no retrain: {new_rows:,} new rows since the last training "
        f"(policy: {spec.monitoring.retrain_rows:,}, or drift)",
    )
    return reason
