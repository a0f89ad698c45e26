"""Every outcome of one training in one typed bundle: the gate verdicts, the MLflow payload
(assay.pipeline.payload), the registry's evidence and the model card are read from it, so the
flow passes one value instead of six."""

from __future__ import annotations

from dataclasses import asdict, dataclass

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
from assay.responsible.stage import ResponsibleOutcome
from assay.training import FittedBaseline, GateResult, TrainResult, quality_gate, versus_baseline

# The stages whose outcome the bundle holds under the stage's own name
BUNDLED = ("baseline", "pretrain", "finetune", "compress", "responsible")


@dataclass(frozen=True)
class RunOutcomes:
    """One training of one snapshot: where it ran, what it trained on, and what each stage
    gave. The names of the stage fields are the stage table's."""

    home: Home
    spec: Spec
    fingerprint: str
    data: Split
    data_gate: GateResult
    leakage: LeakageReport
    metrics: dict[str, dict[str, float]]  # per model, on the test split (with intervals)
    baseline: FittedBaseline
    pretrain: PretrainOutcome
    finetune: TeacherOutcome
    compress: CompressionOutcome
    responsible: ResponsibleOutcome

    def privacy(self) -> PrivacyReport | None:
        """The guarantee the private stages' recorded steps compose to (None: not private)."""
        if self.spec.privacy is None:
            return None
        return PrivacyReport.of(
            self.spec,
            {
                "pretrain": self.pretrain.dp_history,
                "finetune": self.finetune.dp_history,
                "compress": self.compress.dp_history,
            },
        )

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
        """Every gate's verdict by name, in the order the pipeline judges them: a candidate
        that failed any of them is registered as evidence, never champion. The privacy gate
        is there when the spec is private."""
        private = self.privacy()
        return {
            "data": asdict(self.data_gate),
            "leakage": self.leakage.to_dict(),
            "quality": quality_gate(
                self.versus_baseline(), self.spec, self.baseline.name
            ).to_dict(),
            **({"privacy": private.gate().to_dict()} if private else {}),
            "compression": self.compress.gate,
            "fairness": self.responsible.gate,
            "decision": self.responsible.decision_gate,
        }

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
