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
from assay.federated.report import FederationReport
from assay.pipeline.outcomes import RunOutcomes
from assay.privacy.report import PrivacyReport
from assay.provenance import code_digest, git_commit
from assay.registry.tracking import DatasetInput, RunName, StageRun
from assay.stages import data_gate
from assay.stages.table import TABLE

# Spec sections logged as parameters `<section>.<setting>`
LOGGED_SECTIONS = ("baseline", "model", "pretrain", "finetune", "compression")


@dataclass(frozen=True)
class RunPayload:
    """The keyword arguments of `assay.registry.tracking.log_run`."""

    name: RunName
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
    """The leakage guard's counts. The guard is a check before training, not a stage: its
    figures go with the data gate's, in that stage's nested run."""
    leak, prefix = o.leakage.to_dict(), data_gate.NAME
    return {
        f"{prefix}.leaked_test_rows": leak["leaked_rows"],
        f"{prefix}.leaked_share": leak["share"],
        f"{prefix}.training_duplicates": leak["training_duplicates"],
    }


def stage_curves(o: RunOutcomes) -> dict[str, dict[str, list[float]]]:
    """Per-epoch series by stage (step = epoch)."""
    return {stage.name: stage.curves(o.stages[stage.name]) for stage in TABLE}


def _prefixed(by_stage: dict[str, dict]) -> dict:
    return {f"{stage}.{k}": v for stage, values in by_stage.items() for k, v in values.items()}


def run_payload(o: RunOutcomes, record: Path) -> RunPayload:
    """The whole run, from the outcomes and the run record (`record`, beside spec.json)."""
    spec, sizes = o.spec, o.data.sizes()
    private, federated = o.privacy(), o.federation()
    return RunPayload(
        name=RunName(experiment_name(spec), f"{spec.name}-{spec.profile}-{o.fingerprint[:12]}"),
        params=_params(spec, sizes),
        metrics=_metrics(o, private, federated),
        tags=_tags(o, private, federated),
        curves=_prefixed(stage_curves(o)),
        datasets=_datasets(o),
        artifacts=_artifacts(o, record),
        stages=[
            StageRun(stage.name, (f"{stage.name}.",), tuple(stage.files(o.stages[stage.name])))
            for stage in TABLE
        ],
    )


def _params(spec: Spec, sizes: dict[str, int]) -> dict[str, object]:
    """The settings the run was trained with: the logged spec sections, the split's sizes and
    rule, the profile and the training-row cap."""
    return {
        **{
            f"{section}.{k}": v
            for section in LOGGED_SECTIONS
            for k, v in getattr(spec, section).model_dump().items()
        },
        **{f"split.{k}": v for k, v in sizes.items()},
        "split.rule": spec.split.rule,
        "profile": spec.profile,
        "train_rows": spec.train_rows,
    }


def _metrics(
    o: RunOutcomes, private: PrivacyReport | None, federated: FederationReport | None
) -> dict[str, float]:
    """Every model's test metrics, each stage's figures, the leakage counts, and the privacy,
    federation and augmentation figures where the run had them."""
    return {
        **{f"{model}.test.{k}": v for model, m in o.metrics.items() for k, v in m.items()},
        **_prefixed(stage_figures(o)),
        **leakage_figures(o),
        **(private.figures() if private else {}),
        **(federated.figures() if federated else {}),
        **augment.figures(o.finetune.augmentation),
    }


def _tags(
    o: RunOutcomes, private: PrivacyReport | None, federated: FederationReport | None
) -> dict[str, str]:
    """What identifies the run (fingerprint, code, spec, commit, profile), the gates' verdicts,
    the decisions the responsible stage took, and the privacy, federation and augmentation
    tags where the run had them."""
    spec = o.spec
    return {
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
    }


def _datasets(o: RunOutcomes) -> list[DatasetInput]:
    """The training and test frames, named after the spec, as the run's dataset inputs."""
    spec = o.spec
    return [
        DatasetInput(frame, f"{spec.name}-{role}", str(o.home.batches), context, spec.label.column)
        for frame, role, context in (
            (o.data.train, "train", "training"),
            (o.data.test, "test", "testing"),
        )
    ]


def _artifacts(o: RunOutcomes, record: Path) -> list[tuple[str, Path]]:
    """The data gate's report, the run record and its spec.json at the top, then the folder
    each stage kept, under the stage's name."""
    return [
        ("", Path(o.data_gate.report_html)),
        ("", record),
        ("", record.parent / "spec.json"),
        *(
            (stage.name, kept)
            for stage in TABLE
            if (kept := stage.kept(o.stages[stage.name])) is not None
        ),
    ]
