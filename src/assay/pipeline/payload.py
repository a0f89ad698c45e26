"""What one training logs to MLflow, built from its outcomes alone: the parent run's settings,
test metrics, tags, datasets and stage folders, and a nested run per stage of the stage table
holding that stage's figures, curves and files. Every figure of a stage is logged as
`<stage>.<figure>`, the stage's own name, so the nested run and the prefix cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assay.config import Spec
from assay.data import augment
from assay.modeling.reference import best_tried
from assay.modeling.teacher import AUGMENTATION
from assay.pipeline.outcomes import RunOutcomes
from assay.pipeline.stages import TABLE
from assay.provenance import code_digest, git_commit
from assay.registry.tracking import DatasetInput, StageRun
from assay.responsible.conformal import conformal_metrics
from assay.responsible.fairness import FairnessReport

# Spec sections logged as parameters `<section>.<setting>`
LOGGED_SECTIONS = ("baseline", "model", "pretrain", "finetune", "compression")


@dataclass(frozen=True)
class RunPayload:
    """The keyword arguments of `assay.registry.tracking.log_run`."""

    experiment: str
    run_name: str
    params: dict[str, object]
    metrics: dict[str, float]
    tags: dict[str, str]
    curves: dict[str, list[float]]
    datasets: list[DatasetInput]
    artifacts: list[tuple[str, Path]]
    stages: list[StageRun]


def experiment_name(spec: Spec) -> str:
    return f"assay-{spec.name}"


def run_identity(fingerprint: str, spec: Spec) -> dict[str, str]:
    """What makes a training run (and its model version) the same as an earlier one."""
    return {
        "assay.fingerprint": fingerprint,
        "assay.code": code_digest(),
        "assay.spec_digest": spec.digest(),
    }


def stage_figures(o: RunOutcomes) -> dict[str, dict[str, float]]:
    """Each stage's figures by the stage's name (the prefix they are logged under)."""
    compressed, shipped, leak = o.compress, o.responsible, o.leakage.to_dict()
    pruning = o.compress.pruning or {}
    return {
        "data-gate": {
            "passed": float(o.data_gate.passed),
            "warnings": o.data_gate.warnings,
            "leaked_test_rows": leak["leaked_rows"],
            "leaked_share": leak["share"],
            "training_duplicates": leak["training_duplicates"],
        },
        "baseline": {
            "iterations": o.baseline.iterations,
            "seconds": o.baseline.fit_seconds,
            **{f"valid.{t.member}": t.valid_metric for t in best_tried(o.baseline.tried)},
        },
        "pretrain": {"seconds": o.pretrain.seconds, "peak_rss_mb": o.pretrain.peak_rss_mb},
        "finetune": {
            "seconds": o.finetune.seconds,
            "peak_rss_mb": o.finetune.peak_rss_mb,
            "trainable_params": o.finetune.trainable_params,
            "total_params": o.finetune.total_params,
            "trainable_fraction": o.finetune.trainable_fraction,
            "best_epoch": o.finetune.best_epoch,
        },
        "compress": {
            "seconds": compressed.seconds,
            "student_params": compressed.student_params,
            "best_epoch": compressed.best_epoch,
            **compressed.measurements,
            **{f"size.{name}": size for name, size in compressed.sizes.items()},
            **{f"pruning.{k}": v for k, v in pruning.items() if isinstance(v, int | float)},
        },
        "calibrate": shipped.calibration,
        "conformal": conformal_metrics(shipped.conformal),
        "fairness": {"threshold": shipped.threshold["value"], **disparities(shipped.fairness)},
        "explain": {f"importance.{k}": v for k, v in shipped.importance.items()},
    }


def disparities(fairness: dict) -> dict[str, float]:
    """`<feature>.<metric>` with its bootstrap bounds (`_low`, `_high`), per sensitive feature
    and intersection."""
    out: dict[str, float] = {}
    for assessed in FairnessReport.from_dict(fairness).features:
        feature = assessed.feature.replace(" x ", "_x_")
        for d in assessed.disparities:
            name = f"{feature}.{d.metric}"
            out |= {name: d.value, f"{name}_low": d.low, f"{name}_high": d.high}
    return out


def stage_curves(o: RunOutcomes) -> dict[str, dict[str, list[float]]]:
    """Per-epoch series by stage (step = epoch)."""
    return {
        "pretrain": {"loss": o.pretrain.epoch_loss},
        "finetune": o.finetune.history,
        "compress": o.compress.history,
    }


def stage_files(o: RunOutcomes) -> dict[str, list[tuple[str, Path]]]:
    """The files a stage's nested run holds besides the parent's copy of its folder."""
    teacher = Path(o.finetune.folder)
    kept = [("adapter", teacher / "adapter"), ("", teacher / AUGMENTATION)]
    return {
        "data-gate": [("", Path(o.data_gate.report_html))],
        "finetune": [(folder, path) for folder, path in kept if path.exists()],
        "compress": [("", Path(o.compress.folder) / "gate.json")],
        "responsible": [("plots", Path(p)) for p in o.responsible.plots.values()],
    }


def _prefixed(by_stage: dict[str, dict]) -> dict:
    return {f"{stage}.{k}": v for stage, values in by_stage.items() for k, v in values.items()}


def run_payload(o: RunOutcomes, record: Path) -> RunPayload:
    """The whole run, from the outcomes and the run record (`record`, beside spec.json)."""
    spec, sizes, run_dir = o.spec, o.data.sizes(), record.parent
    files, private, federated = stage_files(o), o.privacy(), o.federation()
    return RunPayload(
        experiment=experiment_name(spec),
        run_name=f"{spec.name}-{spec.profile}-{o.fingerprint[:12]}",
        params={
            **{
                f"{section}.{k}": v
                for section in LOGGED_SECTIONS
                for k, v in getattr(spec, section).model_dump().items()
            },
            **{f"split.{k}": v for k, v in sizes.items()},
            "split.rule": spec.split.rule,
            "profile": spec.profile,
            "train_rows": spec.train_rows,
        },
        metrics={
            **{f"{model}.test.{k}": v for model, m in o.metrics.items() for k, v in m.items()},
            **_prefixed(stage_figures(o)),
            **(private.figures() if private else {}),
            **(federated.figures() if federated else {}),
            **augment.figures(o.finetune.augmentation),
        },
        tags={
            **run_identity(o.fingerprint, spec),
            "assay.git_commit": git_commit(),
            "assay.spec": spec.name,
            "assay.profile": spec.profile,
            **o.verdicts(),
            "assay.reference": o.baseline.member,
            "assay.mitigation": o.responsible.mitigation,
            "assay.threshold_rule": o.responsible.threshold["rule"],
            **(private.tags() if private else {}),
            **(federated.tags() if federated else {}),
            **augment.tags(o.finetune.augmentation),
        },
        curves=_prefixed(stage_curves(o)),
        datasets=[
            DatasetInput(
                frame, f"{spec.name}-{role}", str(o.home.batches), context, spec.label.column
            )
            for frame, role, context in (
                (o.data.train, "train", "training"),
                (o.data.test, "test", "testing"),
            )
        ],
        artifacts=[
            ("", Path(o.data_gate.report_html)),
            ("", record),
            ("", run_dir / "spec.json"),
            ("baseline", Path(o.baseline.model_dir)),
            ("finetune", Path(o.finetune.folder)),
            ("compress", Path(o.compress.folder)),
            ("responsible", Path(o.responsible.folder)),
        ],
        stages=[
            StageRun(stage.name, (f"{stage.name}.",), tuple(files.get(stage.name, ())))
            for stage in TABLE
        ],
    )
