"""Train flow: snapshot -> data gate -> split -> baseline -> evaluation -> MLflow."""

from __future__ import annotations

from prefect import flow

from assay.config import load_spec
from assay.errors import GateFailed
from assay.home import Home
from assay.registry.tracking import tracking_uri
from assay.training import TrainResult
from assay.validation.suite import load_suite, suite_digest
from tasks import train as t


@flow(name="train", log_prints=True)
def train(spec_path: str, home: str | None = None) -> TrainResult:
    """Train on every accepted batch; unchanged data reuses each cached stage."""
    spec = load_spec(spec_path)
    suite = load_suite(spec.expectations)
    where = Home.from_env(home)

    # Extract: the snapshot and its rows
    snap = t.snapshot(spec, where)
    batches = t.load(snap, where)
    print(f"snapshot {snap.fingerprint[:12]}: {len(snap.batches)} batch(es), {snap.rows} rows")

    # Gate: every critical expectation must hold on the whole snapshot
    gate = t.data_gate(snap.fingerprint, suite_digest(suite), where, batches, suite)
    if not gate.passed:
        raise GateFailed(f"data gate: {gate.reason} (report: {gate.report_html})")

    # Transform: split, fit, evaluate
    data = t.split(batches, spec)
    fitted = t.fit_baseline(snap.fingerprint, where, data, spec)
    metrics = t.evaluate(data, spec, fitted)

    # Load: one MLflow run per snapshot and code version
    run_id, reused = t.log_mlflow(snap.fingerprint, where, spec, data, metrics, gate, fitted)
    result = TrainResult(
        spec=spec.name,
        fingerprint=snap.fingerprint,
        metrics=metrics,
        mlflow_run_id=run_id,
        reused_run=reused,
        tracking_uri=tracking_uri(where),
        gate_report=gate.report_html,
        run_dir=str(where.run_dir(snap.fingerprint)),
    )
    t.publish_run_summary(result.summary())
    return result
