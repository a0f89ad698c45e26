"""Prefect tasks for monitoring: what new rows to check, the check itself with its artifacts,
its MLflow record, and the events that start a retrain or alert an operator."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from assay.config import Spec
from assay.data.fingerprint import file_digest
from assay.data.store import BatchRecord, BatchStore
from assay.home import Home
from assay.monitoring.check import Reference, RowsCheck, check_rows, reference_package
from assay.monitoring.drift import DriftReport
from assay.monitoring.policy import LastTraining, new_batches, retrain_reason
from assay.monitoring.traffic import served_windows, traffic_drift
from assay.registry.tracking import RunName, log_run
from assay.serving.layout import MANIFEST_FILE, PROFILE_FILE
from assay.serving.profile import ReferenceProfile
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


@task(name="check-traffic", **UNCACHED)
def check_traffic(home: Home, spec: Spec, ref: Reference) -> DriftReport | None:
    """Drift of what the reference model served (its traffic windows), when it served any:
    a table in the UI and a run in the monitoring experiment."""
    manifest = Path(ref.package) / MANIFEST_FILE
    windows = served_windows(home.traffic, file_digest(manifest)) if manifest.is_file() else []
    if not windows:
        return None
    profile = ReferenceProfile.load(Path(ref.package) / PROFILE_FILE)
    found = traffic_drift(profile, windows, spec)
    scope = f"served traffic ({len(windows)} windows, up to {windows[-1].ended})"
    create_table_artifact(
        key="traffic-drift",
        table=found.table(),
        description=f"**{scope}** against {ref.label}: {found.reason}",
    )
    metrics = {f"traffic.drift.psi.{f.feature}": f.psi for f in found.checks}
    metrics |= {"traffic.drift.detected": float(found.detected), "traffic.rows": float(found.rows)}
    log_run(
        home,
        RunName(f"assay-{spec.name}-monitoring", scope),
        params={"reference": ref.label, "scope": scope},
        metrics=metrics,
        tags={"assay.spec": spec.name, "assay.drift": "detected" if found.detected else "none"},
    )
    if found.detected:
        drift_alarm(spec, scope, found.reason, found.drifted, live_degraded=False)
    return found


@task(name="log-check", **IO_RETRIES)
def log_check(home: Home, spec: Spec, found: RowsCheck, scope: str) -> str:
    """One MLflow run per check in the dataset's monitoring experiment."""
    return log_run(
        home,
        RunName(f"assay-{spec.name}-monitoring", scope),
        params={"reference": found.reference, "scope": scope},
        metrics=found.metrics(),
        tags={"assay.spec": spec.name, "assay.drift": "detected" if found.detected else "none"},
    )


@task(name="alert", **IO_RETRIES)
def alert(spec: Spec, found: RowsCheck, scope: str) -> None:
    """`assay.drift.detected` with the evidence; the UI's event feed shows it."""
    degraded = bool(found.live and found.live.degraded)
    drift_alarm(spec, scope, found.reason, found.drift.drifted, degraded)


def drift_alarm(
    spec: Spec, scope: str, reason: str, drifted: list[str], live_degraded: bool
) -> None:
    """`assay.drift.detected`: what was checked, why it alarms, which features drifted."""
    payload = {"scope": scope, "reason": reason, "drifted": drifted, "live_degraded": live_degraded}
    about_dataset(DRIFT_DETECTED, spec.name, payload)


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
