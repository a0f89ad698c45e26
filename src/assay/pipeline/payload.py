"""What one training logs to MLflow, built from its outcomes alone: the parent run's settings,
test metrics, tags, datasets and stage folders, and a nested run per stage of the stage table
holding that stage's figures, curves and files. Every figure of a stage is logged as
`<stage>.<figure>`, the stage's own name, so the nested run and the prefix cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.config import Spec
from assay.data import augment
from assay.pipeline.outcomes import RunOutcomes
from assay.provenance import code_digest, git_commit
from assay.registry.tracking import DatasetInput, StageRun
from assay.stages.table import TABLE

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


def stage_figures(o: RunOutcomes) -> dict[str, dict[str, Any]]:
    """Each stage's figures by the stage's name (the prefix they are logged under)."""
    return {stage.name: stage.figures(o.stages[stage.name]) for stage in TABLE}


def leakage_figures(o: RunOutcomes) -> dict[str, float]:
    """The leakage guard's counts (it runs between the data gate and training)."""
    leak = o.leakage.to_dict()
    return {
        "leakage.leaked_test_rows": leak["leaked_rows"],
        "leakage.leaked_share": leak["share"],
        "leakage.training_duplicates": leak["training_duplicates"],
    }


def stage_curves(o: RunOutcomes) -> dict[str, dict[str, list[float]]]:
    """Per-epoch series by stage (step = epoch)."""
    return {stage.name: stage.curves(o.stages[stage.name]) for stage in TABLE}


def _prefixed(by_stage: dict[str, dict]) -> dict:
    return {f"{stage}.{k}": v for stage, values in by_stage.items() for k, v in values.items()}


def run_payload(o: RunOutcomes, record: Path) -> RunPayload:
    """The whole run, from the outcomes and the run record (`record`, beside spec.json)."""
    spec, sizes, run_dir = o.spec, o.data.sizes(), record.parent
    private, federated = o.privacy(), o.federation()
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
            **leakage_figures(o),
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
            *(
                (stage.name, kept)
                for stage in TABLE
                if (kept := stage.kept(o.stages[stage.name])) is not None
            ),
        ],
        stages=[
            StageRun(stage.name, (f"{stage.name}.",), tuple(stage.files(o.stages[stage.name])))
            for stage in TABLE
        ],
    )
