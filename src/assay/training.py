"""What a training run concludes after its stages (assay.stages): every model's test figures,
the quality gate, the run record and the result the command line prints.

Each takes plain values and writes only under the run folder for its snapshot fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assay.config import Spec
from assay.data.atomic import write_json_atomic
from assay.data.labels import labels
from assay.data.split import Split
from assay.gates import Check, GateReport
from assay.modeling.evaluation import compare
from assay.modeling.paired import PairedDifference, PairedRule
from assay.stages import baseline


def evaluate_models(
    split: Split, spec: Spec, score_paths: dict[str, str]
) -> dict[str, dict[str, float]]:
    """Test metrics with bootstrap intervals for each model, from its saved test scores."""
    truth = labels(split.test, spec)
    scores = {}
    for model, path in score_paths.items():
        scores[model] = np.load(path, allow_pickle=False)
        if len(scores[model]) != len(truth):
            raise ValueError(f"{path}: {len(scores[model])} scores for {len(truth)} test rows")
    return compare(truth, scores, seed=spec.split.seed)


def versus_baseline(split: Split, spec: Spec, shipped: str, baseline: str) -> PairedDifference:
    """The shipped int8 model minus the reference in the quality gate's metric, paired on the
    test rows (from each model's saved test scores)."""
    settings = spec.gates.quality
    rule = PairedRule(settings.margin, settings.resamples, spec.split.seed)
    return rule.compare(
        labels(split.test, spec),
        np.load(shipped, allow_pickle=False),
        np.load(baseline, allow_pickle=False),
        settings.metric,
    )


def quality_gate(versus: PairedDifference, spec: Spec, reference: str = "reference") -> GateReport:
    """The int8 model that ships against the reference trained on the same split in the same
    run, and against an absolute floor: a transformer that loses to gradient boosting, or
    barely beats chance, is not fit to ship however well it compresses.

    Two checks on the paired interval of (int8 - reference): its lower bound at or above
    -margin ("not worse by more than the margin", which a profile may widen for time), and its
    upper bound at or above 0, which no setting relaxes: a model the test rows show to be below
    the reference is never fit to ship. The figures are in the reason, passed or not."""
    settings = spec.gates.quality
    metric = settings.metric
    if not settings.enabled:
        return GateReport("quality", ())
    unshown = ""
    if versus.difference >= -settings.margin > versus.low:
        unshown = (
            f"the point difference is within the margin but this test split cannot show it "
            f"(interval {versus.high - versus.low:.4f} wide): more test rows, or a wider "
            "gates.quality.margin"
        )
    return GateReport(
        "quality",
        (
            Check(
                f"95% paired lower bound of {metric}, int8 student minus {reference}",
                versus.low,
                -settings.margin,
                ">=",
                unshown,
            ),
            Check(
                f"95% paired upper bound of {metric}, int8 student minus {reference}",
                versus.high,
                0.0,
                ">=",
                "a student the test rows show below the reference never ships, whatever the margin",
            ),
            Check(f"int8 student {metric}", versus.candidate, settings.floor, ">=", "the floor"),
        ),
        evidence=f"int8 student {versus.candidate:.4f}, {reference} {versus.reference:.4f} on "
        f"the same test rows; {versus.describe()}",
    )


def write_run_record(run_dir: Path, spec: Spec, metrics: dict[str, Any], extra: dict) -> Path:
    """The resolved spec and the results, saved beside the model files they describe."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.json").write_text(spec.model_dump_json(indent=2))
    return write_json_atomic(run_dir / "metrics.json", {"test": metrics, **extra})


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced and where to look at it."""

    spec: str
    profile: str
    fingerprint: str
    metrics: dict[str, dict[str, float]]
    cached: list[str]
    mlflow_run_id: str
    reused_run: bool
    tracking_uri: str
    gate_report: str
    leakage: str
    reference: str  # the chosen reference and the family's validation figures
    quality_gate: str
    compression_gate: str
    pruning: str
    privacy: str  # the spent (epsilon, delta) and what is not covered, or "off"
    federation: str  # the sites, rounds and bytes of a federated teacher, or "off"
    augmentation: str  # the synthetic training rows and their distance check, or "off"
    fairness_gate: str
    decision_gate: str
    shipped: str
    notes: list[str]
    registered: str
    promotion: str
    aliases: str
    student: str
    run_dir: str
    failed: list[str]

    def summary(self) -> str:
        """Markdown for the Prefect UI and the terminal: metrics, cache hits, where to look."""
        lines = [
            f"## {self.spec} ({self.profile} profile): snapshot `{self.fingerprint[:12]}`",
            "",
            "| model | accuracy | ROC AUC (95% CI) | PR AUC | log loss | Brier |",
            "|---|---|---|---|---|---|",
        ]
        for model, m in self.metrics.items():
            label = f"reference ({self.reference.split()[0]})" if model == baseline.NAME else model
            lines.append(
                f"| {label} | {m['accuracy']:.4f} | {m['roc_auc']:.4f} "
                f"({m['roc_auc_low']:.4f}-{m['roc_auc_high']:.4f}) | {m['pr_auc']:.4f} "
                f"| {m['log_loss']:.4f} | {m['brier']:.4f} |"
            )
        state = "reused (data unchanged)" if self.reused_run else "logged"
        reused = ", ".join(self.cached) if self.cached else "none"
        lines += [
            "",
            f"- Cached stages reused: {reused}",
            f"- MLflow run `{self.mlflow_run_id}` {state} in `{self.tracking_uri}`",
            f"  (browse: `mlflow ui --backend-store-uri {self.tracking_uri}`)",
            f"- Data gate report: `{self.gate_report}`",
            f"- Leakage guard: {self.leakage}",
            f"- Reference: {self.reference}",
            f"- Quality gate: {self.quality_gate}",
            f"- Compression gate: {self.compression_gate}",
            f"- Student pruning: {self.pruning}",
            f"- Privacy: {self.privacy}",
            f"- Federation: {self.federation}",
            f"- Augmentation: {self.augmentation}",
            f"- Fairness gate: {self.fairness_gate}",
            f"- Decision check: {self.decision_gate}",
            f"- Shipped decisions: {self.shipped}",
            *(f"- Note: {note}" for note in self.notes),
            f"- Registered: {self.registered}; {self.promotion}",
            f"- Registry now: {self.aliases}",
            f"- Deployable int8 student with its decision policy: `{self.student}` "
            "(`assay predict --model` takes it)",
            f"- Model card: `{self.run_dir}/model-card/model-card.html`",
            f"- Run files: `{self.run_dir}`",
            *(f"- **FAILED**: {reason}" for reason in self.failed),
        ]
        return "\n".join(lines)
