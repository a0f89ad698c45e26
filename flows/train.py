"""Train flow: snapshot (federated specs: with every site's census) -> data gate -> split ->
leakage guard -> privacy plan (private specs) -> reference family | pretrain -> finetune
(federated specs: rounds at the sites) -> compress (distill from the teacher and the
references, prune, ONNX, int8, gate) -> calibrate ->
(conformal review | threshold, mitigation, fairness gate and degeneracy check | explanations)
-> responsible package | evaluation and quality gate -> MLflow (a parent run, a nested run per
stage) -> registry (version, gated champion/challenger, model card). `|` marks stages that run
side by side through the flow's task runner."""

from __future__ import annotations

from prefect import flow
from prefect.futures import PrefectFuture

from assay.config import Spec
from assay.data.leakage import LeakageReport
from assay.data.snapshot import stage_key
from assay.errors import GateFailed
from assay.home import Home
from assay.pipeline.compose import run_stages
from assay.pipeline.outcomes import RunOutcomes
from assay.pipeline.registration import card_evidence
from assay.registry.models import Candidate, Decision
from assay.stages import baseline, compress, finetune
from assay.stages.data_gate import GateResult
from assay.stages.stage import Stage
from assay.stages.table import TABLE
from assay.training import TrainResult
from assay.validation.suite import load_suite, suite_digest
from flows.dataset import open_dataset
from flows.runners import ChosenPerRun
from tasks import federated
from tasks import registry as r
from tasks import train as t
from tasks.concurrency import training_slot
from tasks.stages import current

# The models evaluated on the test split: the stage whose outcome holds each one's scores, and
# the outcome's field that names the file (the reference is logged as `baseline.test.*`)
EVALUATED = {
    "teacher": (finetune.NAME, "test_scores"),
    "ensemble": (compress.NAME, "ensemble_test_scores"),
    "student_int8": (compress.NAME, "test_scores"),
    baseline.NAME: (baseline.NAME, "test_scores"),
}


@flow(name="train", log_prints=True, task_runner=ChosenPerRun())
def train(
    spec_path: str, home: str | None = None, profile: str | None = None, spec: Spec | None = None
) -> TrainResult:
    """Train on every accepted batch; unchanged data reuses each cached stage. One training
    of a dataset runs at a time, and no more than the stack's cap over all datasets: a run
    waits here for its slot. `spec`: the spec as the caller read it (`assay run`)."""
    spec, where = open_dataset(spec if spec is not None else spec_path, home, profile)
    with training_slot(spec.name):
        return train_snapshot(spec, where)


def train_snapshot(spec: Spec, where: Home) -> TrainResult:
    """The pipeline on the store's current snapshot (the train flow, holding its slot)."""
    suite = load_suite(spec.expectations)

    # Extract: the snapshot and its rows
    snap = t.snapshot(spec, where)
    if spec.federation is not None:  # the sites' data is part of what this run trains on
        snap = federated.census(spec, where, snap)
    batches = t.load(snap, where)
    print(f"snapshot {snap.fingerprint[:12]}: {len(snap.batches)} batch(es), {snap.rows} rows")

    # Gate: every critical expectation must hold on the whole snapshot (the table's first
    # stage, before the split)
    key = {stage.name: stage_key(snap, spec, *stage.sections) for stage in TABLE}
    gating, *training = TABLE
    checked = current(gating, where, key[gating.name])
    gate = checked(key[gating.name], where, (batches, suite), suite_digest(suite))
    stop_unless(gate, where, spec, f"data gate: {gate.reason} (report: {gate.report_html})")

    # Transform: split, and refuse a split whose test rows are also training rows; then every
    # other stage on the outcomes of its inputs, through the flow's task runner (threads or
    # Dask), so the reference family runs beside the teacher's chain
    data = t.split(batches, spec)
    leak = t.leakage(batches, data, spec)
    stop_unless(leak, where, spec, leak.reason)
    if spec.privacy is not None:
        t.privacy_plan(data, spec)

    def submit(stage: Stage, *inputs: PrefectFuture) -> PrefectFuture:
        task = current(stage, where, key[stage.name])
        return task.submit(key[stage.name], where, (data, spec, *inputs))

    futures = run_stages(submit, training, {})
    # Evaluate every model on the test split while the later stages run
    scores = {
        model: getattr(futures[name].result(), field) for model, (name, field) in EVALUATED.items()
    }
    metrics = t.evaluate(snap.fingerprint, where, data, spec, scores)
    t.publish_metrics(metrics, spec, len(data.test))
    done = {gating.name: gate} | {name: future.result() for name, future in futures.items()}
    run = {"home": where, "spec": spec, "fingerprint": snap.fingerprint, "data": data}
    outcomes = RunOutcomes(**run, leakage=leak, metrics=metrics, stages=done)

    # Load: one MLflow run per snapshot and code version
    logged = t.log_mlflow(where, outcomes)

    # Register: a version per candidate; aliases move only as the gates and the champion allow
    registered = register_and_promote(outcomes, logged[0])
    cached = [name for name, future in futures.items() if future.state.name == "Cached"]
    result = outcomes.result(logged, registered, r.current_aliases(where, spec), cached)
    t.publish_run_summary(result.summary())
    t.record_training(where, snap, result.student)
    if result.failed:
        reason = f"{'; '.join(result.failed)} (evidence in MLflow run {result.mlflow_run_id})"
        raise GateFailed(reason, result.summary())
    return result


def stop_unless(gate: GateResult | LeakageReport, where: Home, spec: Spec, reason: str) -> None:
    """A gate before training: on failure, an audit record and an event, then the run stops."""
    if not gate.passed:
        r.record_gate_failure(where, spec, reason)
        raise GateFailed(reason)


def register_and_promote(outcomes: RunOutcomes, run_id: str) -> tuple[Candidate, Decision]:
    """Register the candidate with its evidence, settle its promotion, publish its model card.
    A candidate that failed any gate is registered as evidence, never champion."""
    where = outcomes.home
    candidate = r.register_candidate(where, outcomes, run_id)
    decision = r.settle_promotion(where, outcomes, candidate)
    card = where.run_dir(outcomes.fingerprint) / "model-card"
    if not (candidate.reused and card.is_dir()):
        evidence = card_evidence(outcomes, candidate, decision)
        r.publish_model_card(where, evidence, run_id, card)
    return candidate, decision
