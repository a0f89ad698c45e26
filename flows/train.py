"""Train flow: snapshot -> data gate -> split -> leakage guard -> baseline | pretrain ->
finetune -> compress (distill, prune, ONNX, int8, gate) -> calibrate -> (conformal review |
threshold, mitigation, fairness gate and degeneracy check | explanations) -> responsible package
| evaluation and quality gate -> MLflow (a parent run, a nested run per stage) -> registry
(version, gated champion/challenger, model card). `|` marks stages that run side by side
through the flow's task runner."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import Task, flow
from prefect.futures import PrefectFuture

from assay.compression.stage import CompressionOutcome
from assay.config import Spec
from assay.data.snapshot import stage_key
from assay.data.split import Split
from assay.errors import GateFailed
from assay.home import Home
from assay.modeling.teacher import TeacherOutcome
from assay.registry.card import CardEvidence
from assay.registry.models import Candidate, Decision
from assay.registry.tracking import tracking_uri
from assay.responsible.stage import ResponsibleOutcome
from assay.stages import TABLE
from assay.training import TrainResult, quality_gate
from assay.validation.suite import load_suite, suite_digest
from flows.dataset import open_dataset
from flows.runners import ChosenPerRun
from tasks import registry as r
from tasks import train as t
from tasks.concurrency import training_slot


@flow(name="train", log_prints=True, task_runner=ChosenPerRun())
def train(spec_path: str, home: str | None = None, profile: str | None = None) -> TrainResult:
    """Train on every accepted batch; unchanged data reuses each cached stage. One training
    of a dataset runs at a time, and no more than the stack's cap over all datasets: a run
    waits here for its slot."""
    spec, where = open_dataset(spec_path, home, profile)
    with training_slot(spec.name):
        return train_snapshot(spec, where)


def train_snapshot(spec: Spec, where: Home) -> TrainResult:
    """The pipeline on the store's current snapshot (the train flow, holding its slot)."""
    suite = load_suite(spec.expectations)

    # Extract: the snapshot and its rows
    snap = t.snapshot(spec, where)
    batches = t.load(snap, where)
    print(f"snapshot {snap.fingerprint[:12]}: {len(snap.batches)} batch(es), {snap.rows} rows")

    # Gate: every critical expectation must hold on the whole snapshot
    key = {stage.name: stage_key(snap, spec, *stage.sections) for stage in TABLE}
    gating = t.stage_task(t.data_gate, where, key["data-gate"])
    gate = gating(key["data-gate"], suite_digest(suite), where, batches, suite)
    if not gate.passed:
        reason = f"data gate: {gate.reason} (report: {gate.report_html})"
        r.record_gate_failure(where, spec, reason)
        raise GateFailed(reason)

    # Transform: split, and refuse a split whose test rows are also training rows; the
    # baseline runs beside the teacher's chain (pretrain -> finetune -> compress ->
    # responsible), every stage through the flow's task runner (threads or Dask)
    data = t.split(batches, spec)
    leak = t.leakage(batches, data, spec)
    if not leak.passed:
        r.record_gate_failure(where, spec, leak.reason)
        raise GateFailed(leak.reason)

    def submit(step: Task, *inputs: object) -> PrefectFuture:
        """A stage through the task runner, keyed by its entry in the stage table."""
        own = key[step.name]
        return t.stage_task(step, where, own).submit(own, where, data, spec, *inputs)

    futures = {"baseline": submit(t.fit_baseline), "pretrain": submit(t.pretrain)}
    futures["finetune"] = submit(t.finetune, futures["pretrain"])
    futures["compress"] = submit(t.compress, futures["finetune"])
    # Calibration scores every split once; conformal review, fairness and explanations read
    # those scores side by side; the package gathers them
    calibrated = futures["calibrate"] = submit(t.calibrate, futures["compress"])
    for step in (t.conformal, t.fairness):
        futures[step.name] = submit(step, calibrated)
    futures["explain"] = submit(t.explain, futures["compress"], calibrated)
    parts = tuple(futures[name] for name in ("calibrate", "conformal", "fairness", "explain"))
    futures["responsible"] = submit(t.responsible, futures["compress"], parts)
    fitted, pretrained = futures["baseline"].result(), futures["pretrain"].result()
    tuned, compressed = futures["finetune"].result(), futures["compress"].result()
    scores = {
        "teacher": tuned.test_scores,
        "student_int8": compressed.test_scores,
        "baseline": fitted.test_scores,
    }
    metrics = t.evaluate(snap.fingerprint, where, data, spec, scores)
    t.publish_metrics(metrics, spec, len(data.test))
    responsible = futures["responsible"].result()
    gates = {
        "data": asdict(gate),
        "leakage": leak.to_dict(),
        "quality": quality_gate(metrics, spec).to_dict(),
        "compression": compressed.gate,
        "fairness": responsible.gate,
        "decision": responsible.decision_gate,
    }

    # Load: one MLflow run per snapshot and code version
    run_id, reused = t.log_mlflow(
        snap.fingerprint,
        where,
        spec,
        data,
        metrics,
        gate,
        fitted,
        pretrained,
        tuned,
        compressed,
        responsible,
        gates,
    )

    # Register: a version per candidate; aliases move only as the gates and the champion allow
    candidate, decision = register_and_promote(
        where, spec, snap.fingerprint, data, run_id, metrics, gates, tuned, compressed, responsible
    )
    failed = [g["reason"] for g in gates.values() if not g["passed"]]
    result = TrainResult(
        spec=spec.name,
        profile=spec.profile,
        fingerprint=snap.fingerprint,
        metrics=metrics,
        cached=[name for name, future in futures.items() if future.state.name == "Cached"],
        mlflow_run_id=run_id,
        reused_run=reused,
        tracking_uri=tracking_uri(where),
        gate_report=gate.report_html,
        leakage=leak.reason,
        quality_gate=gates["quality"]["reason"],
        compression_gate=compressed.gate["reason"],
        pruning=compressed.pruning["summary"] if compressed.pruning else "off",
        fairness_gate=responsible.gate["reason"],
        decision_gate=responsible.decision_gate["reason"],
        shipped=responsible.summary(),
        notes=responsible.notes,
        registered=f"{candidate.name} version {candidate.version}"
        + (" (already registered)" if candidate.reused else ""),
        promotion=("champion when settled: " if decision.promoted else "not champion: ")
        + decision.reason,
        aliases=r.current_aliases(where, spec),
        student=responsible.folder,
        run_dir=str(where.run_dir(snap.fingerprint)),
        failed=failed,
    )
    t.publish_run_summary(result.summary())
    t.record_training(where, snap, responsible.folder)
    if failed:
        reason = f"{'; '.join(failed)} (evidence in MLflow run {run_id})"
        raise GateFailed(reason, result.summary())
    return result


def register_and_promote(
    where: Home,
    spec: Spec,
    fingerprint: str,
    data: Split,
    run_id: str,
    metrics: dict[str, dict[str, float]],
    gates: dict[str, dict],
    tuned: TeacherOutcome,
    compressed: CompressionOutcome,
    responsible: ResponsibleOutcome,
) -> tuple[Candidate, Decision]:
    """Register the candidate with its evidence, settle its promotion, publish its model card.
    `gates` holds every gate's verdict (data, leakage, quality, compression, fairness,
    decision): a candidate that failed any of them is registered as evidence, never champion."""
    verdicts = {f"assay.gate.{k}": "passed" if g["passed"] else "failed" for k, g in gates.items()}
    evidence_files = [
        ("adapter", Path(tuned.folder) / "adapter"),
        ("reports", Path(gates["data"]["report_html"])),
        *(("reports", Path(compressed.folder) / f) for f in ("gate.json", "pruning.json")),
    ]
    candidate = r.register_candidate(
        where,
        spec,
        run_id,
        data,
        responsible,
        t.run_identity(fingerprint, spec) | verdicts | {"assay.spec": spec.name},
        [(folder, path) for folder, path in evidence_files if path.exists()],
    )
    decision = r.settle_promotion(where, spec, candidate, gates, data, responsible)
    card = where.run_dir(fingerprint) / "model-card"
    if not (candidate.reused and card.is_dir()):
        evidence = CardEvidence(
            spec,
            candidate.name,
            candidate.version,
            fingerprint,
            data.sizes(),
            metrics,
            gates,
            asdict(compressed),
            asdict(responsible),
            decision,
        )
        r.publish_model_card(where, evidence, run_id, card)
    return candidate, decision
