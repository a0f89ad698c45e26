"""Prefect tasks for training: the library steps plus retries, caching and artifacts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
from prefect import Task, task
from prefect.artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.runtime import flow_run

from assay import training
from assay.compression.stage import CompressionOutcome, compress_stage
from assay.config import Spec
from assay.data.leakage import LeakageReport, find_leakage
from assay.data.snapshot import Snapshot, load_batches, take_snapshot
from assay.data.split import Split, split_batches
from assay.data.store import BatchRecord, BatchStore
from assay.federated.stage import federated_finetune_stage
from assay.home import Home
from assay.modeling import teacher
from assay.monitoring.policy import LastTraining
from assay.pipeline.outcomes import RunOutcomes
from assay.pipeline.payload import experiment_name, run_identity, run_payload
from assay.pipeline.stages import STAGES
from assay.provenance import package_versions
from assay.registry.tracking import find_run, log_run, run_url
from assay.responsible import stage
from assay.responsible.conformal import group_coverage_rows, method
from assay.responsible.fairness import FairnessReport
from assay.responsible.plots import png_data_url
from assay.responsible.stage import ResponsibleOutcome
from assay.validation.suite import gx
from tasks import federated
from tasks.artifacts import artifact_keys
from tasks.ingest import publish_validation
from tasks.policy import CACHED, IO_RETRIES, names_unreachable_store

Batches = list[tuple[BatchRecord, pd.DataFrame]]


def stage_task(cached: Task, home: Home, key: str) -> Task:
    """A cached stage's task for this run: when its folder is gone (deleted, or never written)
    it runs and its cache record is written anew, since a hit would point at files that are not
    there. The folder's path depends only on the key, so the new record replaces the old."""
    if not home.stage_dir(STAGES[cached.name].name, key).is_dir():
        return cached.with_options(refresh_cache=True)
    return cached


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


@task(name="data-gate", **CACHED)
def data_gate(
    fingerprint: str, suite_digest: str, home: Home, batches: Batches, suite: gx.ExpectationSuite
) -> training.GateResult:
    """Cached per (snapshot, suite): the verdict changes only when either does."""
    result, report = training.data_gate(batches, suite, home.stage_dir("data-gate", fingerprint))
    publish_validation(report, f"Data gate on {len(batches)} batch(es)")
    return result


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


@task(name="baseline", **CACHED)
def fit_baseline(fingerprint: str, home: Home, data: Split, spec: Spec) -> training.FittedBaseline:
    """Cached per (batches, data sections, baseline settings, code)."""
    return training.fit_and_score_baseline(data, spec, home.stage_dir("baseline", fingerprint))


@task(name="pretrain", **CACHED)
def pretrain(fingerprint: str, home: Home, data: Split, spec: Spec) -> teacher.PretrainOutcome:
    """Cached per (batches, data sections, model and pretrain settings, code): the tokenizer
    and encoder depend on nothing else, so unchanged data never pretrains twice."""
    return teacher.pretrain_stage(data, spec, home.stage_dir("pretrain", fingerprint))


@task(name="finetune", **CACHED)
def finetune(
    fingerprint: str, home: Home, data: Split, spec: Spec, pretrained: teacher.PretrainOutcome
) -> teacher.TeacherOutcome:
    """Cached per (batches, data sections, model, pretrain and fine-tune settings, code; a
    federated spec's key also covers every site's snapshot): fine-tuning here, or rounds at
    the federation's sites."""
    folder = home.stage_dir("finetune", fingerprint)
    if spec.federation is not None:
        exchange = federated.exchange_of(home)
        ask = federated.asker(spec, exchange, fingerprint)
        return federated_finetune_stage(data, spec, Path(pretrained.folder), folder, exchange, ask)
    return teacher.finetune_stage(data, spec, Path(pretrained.folder), folder)


@task(name="compress", **CACHED)
def compress(
    fingerprint: str,
    home: Home,
    data: Split,
    spec: Spec,
    tuned: teacher.TeacherOutcome,
    reference: training.FittedBaseline,
) -> CompressionOutcome:
    """Cached per (batches, every section up to compression and the reference family's,
    code). Publishes the gate table."""
    folder = home.stage_dir("compress", fingerprint)
    outcome = compress_stage(data, spec, Path(tuned.folder), folder, Path(reference.model_dir))
    create_table_artifact(
        key="compression-gate",
        table=outcome.gate["checks"],
        description=f"**Compression gate**: {outcome.gate['reason']}"
        + (f"\n\n**Pruning**: {outcome.pruning['summary']}" if outcome.pruning else ""),
    )
    return outcome


@task(name="calibrate", **CACHED)
def calibrate(
    fingerprint: str, home: Home, data: Split, spec: Spec, compressed: CompressionOutcome
) -> stage.Calibration:
    """Cached per (batches, every training section, code): scores every split once."""
    folder = home.stage_dir("calibrate", fingerprint)
    return stage.calibrate_stage(data, spec, folder, Path(compressed.folder))


@task(name="conformal", **CACHED)
def conformal(
    fingerprint: str, home: Home, data: Split, spec: Spec, calibration: stage.Calibration
) -> dict:
    """Cached per (batches, every training section, uncertainty settings, code)."""
    return stage.conformal_stage(data, spec, home.stage_dir("conformal", fingerprint), calibration)


@task(name="fairness", **CACHED)
def fairness(
    fingerprint: str, home: Home, data: Split, spec: Spec, calibration: stage.Calibration
) -> stage.FairnessOutcome:
    """Cached per (batches, every training section, sensitive features, fairness settings,
    code): the mitigation options, the assessment of the shipped one and its gate."""
    return stage.fairness_stage(data, spec, home.stage_dir("fairness", fingerprint), calibration)


@task(name="explain", **CACHED)
def explain(
    fingerprint: str,
    home: Home,
    data: Split,
    spec: Spec,
    compressed: CompressionOutcome,
    calibration: stage.Calibration,
) -> stage.Explanations:
    """Cached per (batches, every training section, explanation settings, code)."""
    folder = home.stage_dir("explain", fingerprint)
    return stage.explain_stage(data, spec, folder, Path(compressed.folder), calibration)


@task(name="responsible", **CACHED)
def responsible(
    fingerprint: str,
    home: Home,
    data: Split,
    spec: Spec,
    compressed: CompressionOutcome,
    calibration: stage.Calibration,
    conformal: dict,
    fairness: stage.FairnessOutcome,
    explanations: stage.Explanations,
) -> ResponsibleOutcome:
    """The deployable package. Cached per (batches, every training section,
    fairness/uncertainty/explanation settings, code). Publishes the fairness, mitigation,
    calibration and explanation evidence."""
    folder = home.stage_dir("responsible", fingerprint)
    parts = (calibration, conformal, fairness, explanations)
    outcome = stage.package_stage(data, spec, folder, Path(compressed.folder), *parts)
    publish_responsible(outcome)
    return outcome


# Each stage's task, by its name in the stage table
STAGE_TASKS: dict[str, Task] = {
    step.name: step
    for step in (
        data_gate,
        fit_baseline,
        pretrain,
        finetune,
        compress,
        calibrate,
        conformal,
        fairness,
        explain,
        responsible,
    )
}


def publish_responsible(outcome: ResponsibleOutcome) -> None:
    """Tables and plots an operator reads in the Prefect UI without opening any file."""
    fairness = FairnessReport.from_dict(outcome.fairness)
    create_table_artifact(
        key="fairness-gate",
        table=outcome.gate["checks"] or [{"check": "none configured"}],
        description=f"**Fairness gate**: {outcome.gate['reason']}; shipped mitigation: "
        f"`{outcome.mitigation}`; threshold {outcome.threshold['value']:.4f} "
        f"({outcome.threshold['rule']}); **degeneracy check**: "
        f"{outcome.decision_gate['reason']}",
    )
    create_table_artifact(
        key="fairness-disparities",
        table=fairness.disparity_table(),
        description="Disparities of the shipped decisions on the test split (bootstrap 95% CI)",
    )
    create_table_artifact(
        key="mitigation-tradeoff",
        table=[
            {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}
            for r in outcome.tradeoff
        ],
        description="Each mitigation option on the test split",
    )
    calibration, conformal = outcome.calibration, outcome.conformal
    create_table_artifact(
        key="conformal-coverage",
        table=group_coverage_rows(conformal),
        description="Conformal coverage and review share per sensitive group on the test split",
    )
    top = list(outcome.importance.items())[:5]
    create_markdown_artifact(
        key="calibration-uncertainty-explanations",
        markdown="\n".join(
            [
                f"**Calibration**: temperature {calibration['temperature']:.3f}, ECE "
                f"{calibration['ece_before']:.4f} -> {calibration['ece_after']:.4f} (test)",
                "",
                f"**Conformal review** ({method(conformal)}): target coverage "
                f"{conformal['target_coverage']:.2f}, empirical "
                f"{conformal['empirical_coverage']:.4f}; "
                f"{100 * conformal['review_share']:.1f}% of test rows flagged for review "
                "(per group: the `conformal-coverage` table)",
                "",
                "**Most important features** (mean |SHAP|): "
                + ", ".join(f"{name} {value:.4f}" for name, value in top),
                "",
                "**Example explanations** (SHAP values of the calibrated probability):",
                *(
                    f"- row {e['row']}, probability {e['probability']:.3f}: "
                    + ", ".join(
                        f"{f['feature']}={f['value']} ({f['attribution']:+.3f})"
                        for f in e["features"]
                    )
                    for e in outcome.examples
                ),
            ]
        ),
    )
    keys = artifact_keys(f"plot-{name}" for name in outcome.plots)
    for name, path in outcome.plots.items():
        create_image_artifact(
            image_url=png_data_url(Path(path)),
            key=keys[f"plot-{name}"],
            description=f"`{Path(path).name}` of the shipped int8 model, on the test split",
        )


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
