"""Every outcome of one training in one typed bundle: the gate verdicts, the MLflow payload
(assay.pipeline.payload), the registry's evidence and the model card are read from it, so the
flow passes one value instead of many."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assay.compression.stage import CompressionOutcome
from assay.config import Spec
from assay.data import augment
from assay.data.leakage import LeakageReport
from assay.data.split import Split
from assay.federated.report import FederationReport
from assay.home import Home
from assay.modeling.paired import PairedDifference
from assay.modeling.teacher import PretrainOutcome, TeacherOutcome
from assay.privacy.report import PrivacyReport
from assay.registry.models import Candidate, Decision
from assay.registry.tracking import tracking_uri
from assay.stages import baseline, compress, data_gate, finetune, pretrain, responsible
from assay.stages.baseline import FittedBaseline
from assay.stages.data_gate import GateResult
from assay.stages.responsible import ResponsibleOutcome
from assay.stages.table import TABLE
from assay.training import TrainResult, quality_gate, versus_baseline


@dataclass(frozen=True)
class RunOutcomes:
    """One training of one snapshot: where it ran, what it trained on, and each stage's
    outcome by the stage's name (typed accessors for the ones read by name)."""

    home: Home
    spec: Spec
    fingerprint: str
    data: Split
    leakage: LeakageReport
    metrics: dict[str, dict[str, float]]  # per model, on the test split (with intervals)
    stages: dict[str, Any]

    @property
    def data_gate(self) -> GateResult:
        return self.stages[data_gate.NAME]

    @property
    def baseline(self) -> FittedBaseline:
        return self.stages[baseline.NAME]

    @property
    def pretrain(self) -> PretrainOutcome:
        return self.stages[pretrain.NAME]

    @property
    def finetune(self) -> TeacherOutcome:
        return self.stages[finetune.NAME]

    @property
    def compress(self) -> CompressionOutcome:
        return self.stages[compress.NAME]

    @property
    def responsible(self) -> ResponsibleOutcome:
        return self.stages[responsible.NAME]

    def privacy(self) -> PrivacyReport | None:
        """The guarantee the private stages' recorded steps compose to (None: not private)."""
        if self.spec.privacy is None:
            return None
        histories = {  # the DP-SGD stages' outcomes record the steps they took
            stage.name: steps
            for stage in TABLE
            if (steps := getattr(self.stages[stage.name], "dp_history", None)) is not None
        }
        return PrivacyReport.of(self.spec, histories)

    def federation(self) -> FederationReport | None:
        """The federated teacher's record (None: fine-tuned here)."""
        record = self.finetune.federation
        return FederationReport.of(record) if record else None

    def versus_baseline(self) -> PairedDifference:
        """The shipped model minus the reference on the test rows, with its paired interval."""
        return versus_baseline(
            self.data, self.spec, self.compress.test_scores, self.baseline.test_scores
        )

    def gates(self) -> dict[str, dict]:
        """Every gate's verdict by name, in the order the pipeline judges them: the data gate
        (the table's first stage), the leakage guard, the quality gate, the privacy gate when
        the spec is private, then each later stage's. A candidate that failed any of them is
        registered as evidence, never champion."""
        first, *later = (stage.gates(self.stages[stage.name]) for stage in TABLE)
        private = self.privacy()
        judged = {
            **first,
            "leakage": self.leakage.to_dict(),
            "quality": quality_gate(
                self.versus_baseline(), self.spec, self.baseline.name
            ).to_dict(),
            **({"privacy": private.gate().to_dict()} if private else {}),
        }
        for gates in later:
            judged |= gates
        return judged

    def verdicts(self) -> dict[str, str]:
        """Each gate as a tag, `assay.gate.<name>`: passed or failed."""
        return {
            f"assay.gate.{name}": "passed" if gate["passed"] else "failed"
            for name, gate in self.gates().items()
        }

    def failed(self) -> list[str]:
        return [gate["reason"] for gate in self.gates().values() if not gate["passed"]]

    def result(
        self,
        logged: tuple[str, bool],
        registered: tuple[Candidate, Decision],
        aliases: str,
        cached: list[str],
    ) -> TrainResult:
        """What the run produced and where to look: `logged` is the MLflow run (its id, and
        whether an earlier run was found), `registered` the version and its promotion."""
        (run_id, reused), (candidate, decision) = logged, registered
        gates, shipped, compressed = self.gates(), self.responsible, self.compress
        return TrainResult(
            spec=self.spec.name,
            profile=self.spec.profile,
            fingerprint=self.fingerprint,
            metrics=self.metrics,
            cached=cached,
            mlflow_run_id=run_id,
            reused_run=reused,
            tracking_uri=tracking_uri(self.home),
            gate_report=self.data_gate.report_html,
            leakage=self.leakage.reason,
            reference=self.baseline.chosen,
            quality_gate=gates["quality"]["reason"],
            compression_gate=compressed.gate["reason"],
            pruning=compressed.pruning["summary"] if compressed.pruning else "off",
            privacy=private.summary() if (private := self.privacy()) else "off",
            federation=federated.summary() if (federated := self.federation()) else "off",
            augmentation=augment.summary(self.finetune.augmentation),
            fairness_gate=shipped.gate["reason"],
            decision_gate=shipped.decision_gate["reason"],
            shipped=shipped.summary(),
            notes=shipped.notes,
            registered=f"{candidate.name} version {candidate.version}"
            + (" (already registered)" if candidate.reused else ""),
            promotion=("champion when settled: " if decision.promoted else "not champion: ")
            + decision.reason,
            aliases=aliases,
            student=shipped.folder,
            run_dir=str(self.home.run_dir(self.fingerprint)),
            failed=self.failed(),
        )
