"""The privacy plan of one training: which rows are private, every DP-SGD phase's planned
steps, and the one noise multiplier that keeps their composition within the spec's budget.
A phase is named by the spec section whose schedule it runs (pretraining, fine-tuning,
distillation, and the recovery after pruning). Each stage computes the same plan from the same
split and spec (stages run and cache apart), and trains with its own engine, whose history
becomes part of the stage's outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from opacus import PrivacyEngine

from assay.config import PrivacySpec, Spec
from assay.config.source import Section
from assay.data.split import Split
from assay.errors import SpecError
from assay.modeling.rows import (
    distillation_rows,
    on_public_rows,
    pretraining_rows,
    training_rows,
)
from assay.modeling.sizes import pretrain_sizes, supervised_sizes
from assay.privacy.budget import StageSteps, shared_noise
from assay.privacy.dpsgd import PrivateSGD

# In this order: each phase's sampling seed is `seed + 2 * index`
PRIVATE_PHASES = ("pretrain", "finetune", "compression", "compression.pruning")

S = TypeVar("S", bound=Section)


@dataclass(frozen=True)
class PrivacyPlan:
    settings: PrivacySpec
    private_rows: int
    stages: tuple[StageSteps, ...]
    noise: float

    def sgd(self, phase: str, seed: int) -> PrivateSGD:
        """A fresh engine for `phase`: sampling and noise seeded apart from other phases."""
        index = PRIVATE_PHASES.index(phase)
        return PrivateSGD(
            PrivacyEngine(accountant=self.settings.accountant),
            self.noise,
            self.settings.max_grad_norm,
            seed + 2 * index,  # the phase's sampling seed; its noise takes the next one
        )

    def describe(self) -> str:
        """One line for the log: the budget, the noise and each phase's planned steps."""
        stages = ", ".join(
            f"{s.stage} {s.steps} steps (rate {s.sample_rate:.3g})" for s in self.stages
        )
        return (
            f"privacy plan: epsilon {self.settings.epsilon:g} at delta {self.settings.delta:g} "
            f"over {self.private_rows:,} private rows, noise multiplier {self.noise:.3f}: "
            f"{stages}"
        )

    def schedule(self, section: S) -> S:
        """A stage's settings as DP-SGD runs them: the learning rate scaled, and the batch
        the privacy section sets (when it sets one)."""
        update: dict[str, object] = {
            "learning_rate": section.learning_rate * self.settings.learning_rate_scale
        }
        if self.settings.batch_size is not None:
            update["batch_size"] = self.settings.batch_size
        return section.model_copy(update=update)


def is_private(spec: Spec, phase: str) -> bool:
    """Whether `phase` (one of PRIVATE_PHASES) trains by DP-SGD on private rows: every one
    does under privacy, except pretraining and distillation moved to the public rows."""
    if spec.privacy is None:
        return False
    if phase == "pretrain":
        return not on_public_rows(spec, "pretrain")
    return phase == "finetune" or not on_public_rows(spec, "distil")


def plan(split: Split, spec: Spec) -> PrivacyPlan:
    """The plan for a private spec; a SpecError when delta is not below 1 / private rows (a
    delta that large allows publishing a row outright) or the budget cannot be met."""
    settings = spec.privacy
    if settings is None:
        raise SpecError("privacy: the spec has no privacy section")
    train = training_rows(split, spec)
    public = len(split.valid) if settings.public_validation else 0
    public += len(split.calibration) if "calibration" in settings.public else 0
    held = len(split.valid) + len(split.calibration)
    private_rows = len(train) + held + len(split.unlabelled) - public
    if settings.delta >= 1 / private_rows:
        raise SpecError(
            f"privacy.delta: {settings.delta} is not below 1 / {private_rows} private rows "
            f"({1 / private_rows:.3g}); use a smaller delta"
        )
    draft = PrivacyPlan(settings, private_rows, (), 0.0)
    stages = []
    if spec.pretrain.enabled and spec.pretrain.epochs != 0 and is_private(spec, "pretrain"):
        pretraining = draft.schedule(spec.pretrain)
        corpus = len(pretraining_rows(split, spec, train))
        sizes = pretrain_sizes(corpus, batch_size=pretraining.batch_size, epochs=pretraining.epochs)
        stages.append(StageSteps.planned("pretrain", corpus, sizes.batch_size, sizes.epochs))
    supervised = [("finetune", draft.schedule(spec.finetune), len(train))]
    if is_private(spec, "compression"):  # and so is its recovery: both read the same pool
        pool = len(distillation_rows(split, spec))
        supervised.append(("compression", draft.schedule(spec.compression), pool))
        if spec.compression.pruning.enabled:
            recovery = draft.schedule(spec.compression.recovery())
            supervised.append(("compression.pruning", recovery, pool))
    for stage, schedule, rows in supervised:
        sizes = supervised_sizes(
            rows, batch_size=schedule.batch_size, epochs=schedule.epochs, patience=None
        )
        stages.append(StageSteps.planned(stage, rows, sizes.batch_size, sizes.epochs))
    noise = shared_noise(stages, settings.epsilon, settings.delta, settings.accountant)
    return PrivacyPlan(settings, private_rows, tuple(stages), noise)
