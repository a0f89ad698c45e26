"""Prefect tasks for training around the stages (tasks/stages.py): the snapshot, the split, the
leakage guard, evaluation and MLflow, with retries, caching and artifacts."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from prefect import task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.runtime import flow_run

from assay import training
from assay.config import Spec
from assay.data.leakage import LeakageReport, find_leakage
from assay.data.snapshot import Snapshot, load_batches, take_snapshot
from assay.data.split import Split, split_batches
from assay.data.store import BatchRecord, BatchStore
from assay.home import Home
from assay.modeling import teacher
from assay.monitoring.policy import LastTraining
from assay.pipeline.outcomes import RunOutcomes
from assay.pipeline.payload import experiment_name, run_identity, run_payload
from assay.provenance import package_versions
from assay.registry.tracking import find_run, log_run, run_url
from tasks.policy import CACHED, IO_RETRIES, names_unreachable_store

Batches = list[tuple[BatchRecord, pd.DataFrame]]


@task(name="take-snapshot", **IO_RETRIES)
def snapshot(spec: Spec, home: Home) -> Snapshot:
    """The accepted batches this run trains on, listed in the UI: what data."""
    snap = take_snapshot(BatchStore(home.batches), spec)
    create_table_artifact(
        key="training-data",
        table=[
            {
                "batch": b.hash[:12],
                "source": b.source,
                "rows": b.rows,
                "labelled": b.labelled,
                "accepted": b.accepted_at,
            }
            for b in snap.batches
        ],
        description=f"**Snapshot {snap.fingerprint[:12]}**: {len(snap.batches)} accepted "
        f"batch(es), {snap.rows:,} rows",
    )
    return snap


@task(name="record-training", **IO_RETRIES)
def record_training(home: Home, snap: Snapshot, package: str) -> None:
    """What 'new since the last training' is measured from (retraining policy, monitor)."""
    batches = tuple(b.hash for b in snap.batches)
    LastTraining(snap.fingerprint, batches, snap.rows, package).save(home.last_training)


@task(name="load-batches", **IO_RETRIES)
def load(snap: Snapshot, home: Home) -> Batches:
    return load_batches(BatchStore(home.batches), snap)


@task(name="split", **IO_RETRIES)
def split(batches: Batches, spec: Spec) -> Split:
    return split_batches(batches, spec)


@task(name="privacy-plan")
def privacy_plan(data: Split, spec: Spec) -> None:
    """Before anything trains: a private spec's delta and budget are checked against the
    data, and the noise and each stage's steps are put on record."""
    planned = teacher.privacy_plan(data, spec)
    if planned is not None:
        print(planned.describe())
        create_markdown_artifact(key="privacy-plan", markdown=f"**{planned.describe()}**")


@task(name="leakage-guard", **IO_RETRIES)
def leakage(batches: Batches, data: Split, spec: Spec) -> LeakageReport:
    """Test rows that are also training rows, counted before anything trains."""
    report = find_leakage(batches, data, spec)
    create_markdown_artifact(key="leakage", markdown=f"**Leakage guard**: {report.reason}")
    return report


@task(name="evaluate", **CACHED)
def evaluate(
    fingerprint: str, home: Home, data: Split, spec: Spec, score_paths: dict[str, str]
) -> dict[str, dict[str, float]]:
    """Cached per snapshot (its batches and every model setting): the bootstrap intervals are
    the slowest part of a rerun on unchanged data."""
    return training.evaluate_models(data, spec, score_paths)


@task(name="publish-metrics", **IO_RETRIES)
def publish_metrics(table: dict[str, dict[str, float]], spec: Spec, test_rows: int) -> None:
    """Every model side by side on the test split, as a table in the Prefect UI (each run)."""
    create_table_artifact(
        key="test-metrics",
        table=[
            {"model": model, **{k: round(v, 4) for k, v in m.items()}} for model, m in table.items()
        ],
        description=f"Test split of {spec.name}: {test_rows} rows; "
        "_low/_high are bootstrap 95% intervals",
    )


@task(name="log-to-mlflow", **IO_RETRIES)
@names_unreachable_store
def log_mlflow(home: Home, outcomes: RunOutcomes) -> tuple[str, bool]:
    """One MLflow run per (snapshot, spec, code): a rerun on unchanged data and settings finds
    it and logs nothing. The payload is the library's (assay.pipeline.payload); the Prefect
    flow run's links are added here."""
    spec, fingerprint = outcomes.spec, outcomes.fingerprint
    existing = find_run(home, experiment_name(spec), run_identity(fingerprint, spec))
    if existing is not None:
        publish_run_link(home, existing)
        return existing, True
    record = training.write_run_record(
        home.run_dir(fingerprint),
        spec,
        outcomes.metrics,
        {"split": outcomes.data.sizes(), "packages": package_versions()},
    )
    payload = run_payload(outcomes, record)
    run_id = log_run(home, **vars(replace(payload, tags=payload.tags | prefect_links())))
    publish_run_link(home, run_id)
    return run_id, False


def publish_run_link(home: Home, run_id: str) -> None:
    create_link_artifact(
        key="mlflow-run",
        link=run_url(home, run_id),
        link_text=f"MLflow run {run_id[:8]}",
        description="The MLflow run of this training (parent run; one nested run per stage)",
    )


def prefect_links() -> dict[str, str]:
    """Tags that lead from the MLflow run back to the Prefect flow run."""
    links = {"prefect.flow_run_id": str(flow_run.id)} if flow_run.id else {}
    if flow_run.ui_url:
        links["prefect.flow_run_url"] = flow_run.ui_url
    return links


@task(name="publish-run-summary", **IO_RETRIES)
def publish_run_summary(summary: str) -> None:
    create_markdown_artifact(key="train-summary", markdown=summary)
