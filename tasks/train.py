"""Prefect tasks for training: the library steps plus retries, caching and artifacts."""

from __future__ import annotations

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
from assay.home import Home
from assay.modeling import teacher
from assay.monitoring.policy import LastTraining
from assay.provenance import code_digest, git_commit, package_versions
from assay.registry.tracking import (
    DatasetInput,
    StageRun,
    find_run,
    log_run,
    run_url,
)
from assay.responsible import stage
from assay.responsible.fairness import FairnessReport
from assay.responsible.plots import png_data_url
from assay.responsible.stage import ResponsibleOutcome
from assay.stages import STAGES
from assay.validation.suite import gx
from tasks.artifacts import artifact_keys
from tasks.ingest import publish_validation
from tasks.policy import CACHED, IO_RETRIES, names_unreachable_store

Batches = list[tuple[BatchRecord, pd.DataFrame]]
# What the package step takes from the steps before it, in package_stage's order
ResponsibleParts = tuple[stage.Calibration, dict, stage.FairnessOutcome, stage.Explanations]


def stage_task(cached: Task, home: Home, key: str) -> Task:
    """A cached stage's task for this run: when its folder is gone (deleted, or never written)
    it runs and its cache record is written anew, since a hit would point at files that are not
    there. The folder's path depends only on the key, so the new record replaces the old."""
    entry = STAGES[cached.name]
    if entry.writes_folder and not home.stage_dir(entry.name, key).is_dir():
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
    """Cached per (batches, data sections, model, pretrain and fine-tune settings, code)."""
    folder = home.stage_dir("finetune", fingerprint)
    return teacher.finetune_stage(data, spec, Path(pretrained.folder), folder)


@task(name="compress", **CACHED)
def compress(
    fingerprint: str, home: Home, data: Split, spec: Spec, tuned: teacher.TeacherOutcome
) -> CompressionOutcome:
    """Cached per (batches, every section up to compression, code). Publishes the gate table."""
    outcome = compress_stage(
        data, spec, Path(tuned.folder), home.stage_dir("compress", fingerprint)
    )
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
    return stage.calibrate_stage(data, spec, Path(compressed.folder), folder)


@task(name="conformal", **CACHED)
def conformal(
    fingerprint: str, home: Home, data: Split, spec: Spec, calibration: stage.Calibration
) -> dict:
    """Cached per (batches, every training section, uncertainty settings, code)."""
    return stage.conformal_stage(data, spec, calibration)


@task(name="fairness", **CACHED)
def fairness(
    fingerprint: str, home: Home, data: Split, spec: Spec, calibration: stage.Calibration
) -> stage.FairnessOutcome:
    """Cached per (batches, every training section, sensitive features, fairness settings,
    code): the mitigation options, the assessment of the shipped one and its gate."""
    folder = home.stage_dir("fairness", fingerprint)
    return stage.fairness_stage(data, spec, calibration, folder)


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
    return stage.explain_stage(data, spec, Path(compressed.folder), calibration, folder)


@task(name="responsible", **CACHED)
def responsible(
    fingerprint: str,
    home: Home,
    data: Split,
    spec: Spec,
    compressed: CompressionOutcome,
    parts: ResponsibleParts,
) -> ResponsibleOutcome:
    """The deployable package. Cached per (batches, every training section,
    fairness/uncertainty/explanation settings, code). Publishes the fairness, mitigation,
    calibration and explanation evidence."""
    folder = home.stage_dir("responsible", fingerprint)
    outcome = stage.package_stage(data, spec, Path(compressed.folder), folder, *parts)
    publish_responsible(outcome)
    return outcome


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
    top = list(outcome.importance.items())[:5]
    create_markdown_artifact(
        key="calibration-uncertainty-explanations",
        markdown="\n".join(
            [
                f"**Calibration**: temperature {calibration['temperature']:.3f}, ECE "
                f"{calibration['ece_before']:.4f} -> {calibration['ece_after']:.4f} (test)",
                "",
                f"**Conformal review**: target coverage {conformal['target_coverage']:.2f}, "
                f"empirical {conformal['empirical_coverage']:.4f}; "
                f"{100 * conformal['review_share']:.1f}% of test rows flagged for review",
                "",
                "**Most important features** (occlusion): "
                + ", ".join(f"{name} {value:.4f}" for name, value in top),
                "",
                "**Example explanations** (change in probability when the cell is missing):",
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


def run_identity(fingerprint: str, spec: Spec) -> dict[str, str]:
    """What makes a training run (and its model version) the same as an earlier one."""
    return {
        "assay.fingerprint": fingerprint,
        "assay.code": code_digest(),
        "assay.spec_digest": spec.digest(),
    }


@task(name="log-to-mlflow", **IO_RETRIES)
@names_unreachable_store
def log_mlflow(
    fingerprint: str,
    home: Home,
    spec: Spec,
    data: Split,
    metrics: dict[str, dict[str, float]],
    gate: training.GateResult,
    fitted: training.FittedBaseline,
    pretrained: teacher.PretrainOutcome,
    tuned: teacher.TeacherOutcome,
    compressed: CompressionOutcome,
    responsible: ResponsibleOutcome,
    gates: dict[str, dict],
) -> tuple[str, bool]:
    """One MLflow run per (snapshot, spec, code): a rerun on unchanged data and settings finds
    it and logs nothing. `gates` holds every gate's verdict, tagged `assay.gate.<name>`."""
    identity = run_identity(fingerprint, spec)
    experiment = f"assay-{spec.name}"
    existing = find_run(home, experiment, identity)
    if existing is not None:
        publish_run_link(home, existing)
        return existing, True
    run_dir = home.run_dir(fingerprint)
    record = training.write_run_record(
        run_dir, spec, metrics, {"split": data.sizes(), "packages": package_versions()}
    )
    curves = {"pretrain.loss": pretrained.epoch_loss}
    curves.update({f"finetune.{k}": v for k, v in tuned.history.items()})
    curves.update({f"distill.{k}": v for k, v in compressed.history.items()})
    run_id = log_run(
        home,
        experiment=experiment,
        run_name=f"{spec.name}-{spec.profile}-{fingerprint[:12]}",
        params={
            **{
                f"{section}.{k}": v
                for section in ("baseline", "model", "pretrain", "finetune", "compression")
                for k, v in getattr(spec, section).model_dump().items()
            },
            **{f"split.{k}": v for k, v in data.sizes().items()},
            "split.rule": spec.split.rule,
            "profile": spec.profile,
            "train_rows": spec.train_rows,
            "baseline.iterations": fitted.iterations,
        },
        metrics={
            **{f"{model}.test.{k}": v for model, m in metrics.items() for k, v in m.items()},
            "data_gate.passed": float(gate.passed),
            "data_gate.warnings": gate.warnings,
            "data_gate.leaked_test_rows": gates["leakage"]["leaked_rows"],
            "data_gate.leaked_share": gates["leakage"]["share"],
            "data_gate.training_duplicates": gates["leakage"]["training_duplicates"],
            "decision.threshold": responsible.threshold["value"],
            "teacher.trainable_params": tuned.trainable_params,
            "teacher.total_params": tuned.total_params,
            "teacher.trainable_fraction": tuned.trainable_fraction,
            "teacher.best_epoch": tuned.best_epoch,
            "pretrain.seconds": pretrained.seconds,
            "finetune.seconds": tuned.seconds,
            "peak_rss_mb": max(pretrained.peak_rss_mb, tuned.peak_rss_mb),
            "student.params": compressed.student_params,
            "distill.seconds": compressed.seconds,
            **{f"student.{k}": v for k, v in compressed.measurements.items()},
            **{f"size.{k}": v for k, v in compressed.sizes.items()},
            **{
                f"pruning.{k}": v
                for k, v in (compressed.pruning or {}).items()
                if isinstance(v, int | float)
            },
            **responsible_metrics(responsible),
        },
        curves=curves,
        tags={
            **identity,
            "assay.git_commit": git_commit(),
            "assay.spec": spec.name,
            "assay.profile": spec.profile,
            **{f"assay.gate.{k}": "passed" if g["passed"] else "failed" for k, g in gates.items()},
            "assay.mitigation": responsible.mitigation,
            "assay.threshold_rule": responsible.threshold["rule"],
            **prefect_links(),
        },
        datasets=[
            DatasetInput(
                data.train,
                f"{spec.name}-train",
                str(home.batches),
                "training",
                spec.label.column,
            ),
            DatasetInput(
                data.test, f"{spec.name}-test", str(home.batches), "testing", spec.label.column
            ),
        ],
        artifacts=[
            ("", Path(gate.report_html)),
            ("", record),
            ("", run_dir / "spec.json"),
            ("baseline", Path(fitted.model_dir)),
            ("teacher", Path(tuned.folder)),
            ("student", Path(compressed.folder)),
            ("responsible", Path(responsible.folder)),
        ],
        stages=stage_runs(gate, tuned, compressed, responsible),
    )
    publish_run_link(home, run_id)
    return run_id, False


def publish_run_link(home: Home, run_id: str) -> None:
    create_link_artifact(
        key="mlflow-run",
        link=run_url(home, run_id),
        link_text=f"MLflow run {run_id[:8]}",
        description="The MLflow run of this training (parent run; one nested run per stage)",
    )


def stage_runs(
    gate: training.GateResult,
    tuned: teacher.TeacherOutcome,
    compressed: CompressionOutcome,
    responsible: ResponsibleOutcome,
) -> list[StageRun]:
    """The nested run of each stage: which logged names belong to it, and its own files."""
    return [
        StageRun("validation", ("data_gate.",), (("", Path(gate.report_html)),)),
        StageRun("pretraining", ("pretrain.", "model.")),
        StageRun(
            "fine-tuning",
            ("finetune.", "teacher."),
            tuple(("adapter", a) for a in [Path(tuned.folder) / "adapter"] if a.is_dir()),
        ),
        StageRun("distillation", ("distill.", "pruning.", "student.params", "compression.")),
        StageRun(
            "quantization",
            ("student.", "size."),
            (("", Path(compressed.folder) / "gate.json"),),
        ),
        StageRun(
            "fairness",
            ("fairness.", "calibration.", "conformal.", "importance."),
            tuple(("plots", Path(p)) for p in responsible.plots.values()),
        ),
    ]


def prefect_links() -> dict[str, str]:
    """Tags that lead from the MLflow run back to the Prefect flow run."""
    links = {"prefect.flow_run_id": str(flow_run.id)} if flow_run.id else {}
    if flow_run.ui_url:
        links["prefect.flow_run_url"] = flow_run.ui_url
    return links


def responsible_metrics(outcome: ResponsibleOutcome) -> dict[str, float]:
    """Calibration, conformal, disparity (with interval) and importance figures, flat."""
    out = {f"calibration.{k}": v for k, v in outcome.calibration.items()}
    out |= {f"conformal.{k}": v for k, v in outcome.conformal.items()}
    for d in FairnessReport.from_dict(outcome.fairness).features:
        feature = d.feature.replace(" x ", "_x_")
        for disparity in d.disparities:
            name = f"fairness.{feature}.{disparity.metric}"
            out |= {
                name: disparity.value,
                f"{name}_low": disparity.low,
                f"{name}_high": disparity.high,
            }
    out |= {f"importance.{k}": v for k, v in outcome.importance.items()}
    return out


@task(name="publish-run-summary", **IO_RETRIES)
def publish_run_summary(summary: str) -> None:
    create_markdown_artifact(key="train-summary", markdown=summary)
