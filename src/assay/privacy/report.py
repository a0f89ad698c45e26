"""What a private training's guarantee is and is not: the (epsilon, delta) its DP-SGD stages
spent, composed by one accountant, and every step that fits on rows listed as covered (by
DP-SGD, or because it reads only rows the spec marks public) or not covered. The privacy gate
holds the spent epsilon to the spec's budget."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from assay.config import Spec
from assay.gates import Check, GateReport
from assay.privacy.budget import History, spent_epsilon

PUBLIC = "public validation rows"

# What reads private rows but never reaches the shipped model or its decisions.
EVIDENCE_ONLY = (
    "the gradient-boosting baseline (trained on the training rows without noise; a yardstick "
    "for the quality gate, never shipped)",
    "test-split measurements (metrics, fairness assessment, explanations; reported, not fitted)",
)


@dataclass(frozen=True)
class Fit:
    """One step that learns from rows, and whether the guarantee covers it."""

    what: str
    covered: bool
    how: str  # "DP-SGD", "public validation rows", or what it reads without noise


def fits(spec: Spec) -> list[Fit]:
    """Every fitting step of a training of `spec`, covered or not."""
    settings = spec.privacy
    public = settings is not None and settings.public_validation
    distils_public = settings is not None and settings.on_public_rows("distil")
    on_fitting = (True, PUBLIC) if public else (False, "training rows")
    on_valid = (True, PUBLIC) if public else (False, "validation rows")
    public_calibration = settings is not None and "calibration" in settings.public
    on_calibration = (
        (True, "public calibration rows") if public_calibration else (False, "calibration rows")
    )
    taught = (
        True,
        "the private teacher's outputs on the public validation rows and synthetic rows "
        "between them",
    )
    distilled = taught if distils_public else (True, "DP-SGD")
    steps = []
    if spec.pretrain.enabled and spec.pretrain.epochs != 0:
        pretrained = settings is not None and settings.on_public_rows("pretrain")
        steps.append(Fit("encoder weights (pretraining)", True, PUBLIC if pretrained else "DP-SGD"))
    steps.append(Fit("adapter and head weights (fine-tuning)", True, "DP-SGD"))
    steps.append(Fit("student weights (distillation)", *distilled))
    if spec.compression.pruning.enabled:
        steps.append(Fit("pruning recovery", *distilled))
        steps.append(Fit("pruning importance scores", *on_fitting))
    steps += [
        Fit("tokenizer quantile bins and vocabulary", *on_fitting),
        Fit("class balance of the loss and the restored prior", *on_fitting),
        Fit("early stopping (the best epoch by validation ROC AUC)", *on_valid),
        Fit("calibration temperature", *on_valid),
        Fit("decision threshold", *on_valid),
        Fit("conformal quantile", *on_calibration),
        Fit("drift reference profile", *on_fitting),
    ]
    if spec.sensitive_features:
        both = (True, "public validation and calibration rows")
        held_out = settings is not None and settings.public_held_out
        steps.append(
            Fit("group thresholds of the fairness mitigation", *both if held_out else on_fitting)
        )
    if spec.compression.quantization == "static":
        steps.append(Fit("int8 calibration ranges", *on_fitting))
    if spec.compression.reweigh_on is not None:
        counted = (True, PUBLIC) if distils_public else (False, "training rows")
        steps.append(Fit("reweighing weights (counts per group and label)", *counted))
    return steps


@dataclass(frozen=True)
class PrivacyReport:
    epsilon: float  # spent, composed over every private stage
    delta: float
    budget: float
    accountant: str
    steps: dict[str, int]  # DP-SGD steps taken per stage
    covered: list[str]
    not_covered: list[str]

    @classmethod
    def of(cls, spec: Spec, histories: Mapping[str, History]) -> PrivacyReport:
        """The guarantee of the stages' recorded DP-SGD steps under `spec.privacy`."""
        settings = spec.privacy
        if settings is None:
            raise ValueError("a privacy report needs a private spec")
        steps = [entry for history in histories.values() for entry in history]
        listed = fits(spec)
        return cls(
            epsilon=spent_epsilon(steps, settings.delta, settings.accountant),
            delta=settings.delta,
            budget=settings.epsilon,
            accountant=settings.accountant,
            steps={stage: sum(e[2] for e in h) for stage, h in histories.items()},
            covered=[f"{f.what} ({f.how})" for f in listed if f.covered],
            not_covered=[f"{f.what} ({f.how})" for f in listed if not f.covered],
        )

    def gate(self) -> GateReport:
        return GateReport(
            "privacy", (Check("spent epsilon", self.epsilon, self.budget, "<=", self._at()),)
        )

    def _at(self) -> str:
        return f"delta {self.delta:g}, {self.accountant} accountant"

    def summary(self) -> str:
        uncovered = f"; not covered: {len(self.not_covered)} steps" if self.not_covered else ""
        return f"epsilon {self.epsilon:.3f} of {self.budget:g} ({self._at()}){uncovered}"

    def figures(self) -> dict[str, float]:
        """The guarantee as run metrics."""
        return {
            "privacy.epsilon": self.epsilon,
            "privacy.delta": self.delta,
            "privacy.budget": self.budget,
            **{f"privacy.steps.{stage}": float(n) for stage, n in self.steps.items()},
        }

    def tags(self) -> dict[str, str]:
        """The guarantee as registry version tags."""
        return {
            "assay.privacy.epsilon": f"{self.epsilon:.4f}",
            "assay.privacy.delta": f"{self.delta:g}",
            "assay.privacy.accountant": self.accountant,
            "assay.privacy.covers": "; ".join(self.covered),
            "assay.privacy.not_covered": "; ".join(self.not_covered) or "none",
        }

    def to_dict(self) -> dict:
        return {
            "epsilon": self.epsilon,
            "delta": self.delta,
            "budget": self.budget,
            "accountant": self.accountant,
            "steps": self.steps,
            "covered": self.covered,
            "not_covered": self.not_covered,
            "evidence_only": list(EVIDENCE_ONLY),
        }
