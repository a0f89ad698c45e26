"""How much noise a private training needs. Every DP-SGD stage of one training reads the same
private rows, so their privacy losses add up: one accountant composes them, and one noise
multiplier shared by all the stages is chosen so that the composition spends no more than the
spec's (epsilon, delta). Splitting epsilon evenly and solving each stage alone wastes budget
(three stages of 30k rows at epsilon 4 compose to about 2.25 that way).

The plan counts each stage's planned steps; early stopping only spends less."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from opacus.accountants import create_accountant

from assay.errors import SpecError

ACCOUNTANTS = ("prv", "rdp")
LARGEST_NOISE = 1e4  # beyond this the budget cannot be met by noise: fewer steps are needed
BISECTIONS = 60  # halvings of the noise interval; `high` always stays within the budget


@dataclass(frozen=True)
class StageSteps:
    """One DP-SGD stage as the accountant sees it: its Poisson sampling rate (expected batch
    over rows) and its number of optimizer steps."""

    stage: str
    sample_rate: float
    steps: int

    @classmethod
    def planned(cls, stage: str, rows: int, batch_size: int, epochs: int) -> StageSteps:
        """A stage of `epochs` over `rows`, expected batch `batch_size`, as Opacus counts it:
        ceil(rows / batch) steps per epoch, each row drawn with probability 1 / that."""
        per_epoch = math.ceil(rows / batch_size)
        return cls(stage, 1 / per_epoch, epochs * per_epoch)


# What an Opacus accountant records: (noise multiplier, sample rate, steps) per run of steps.
History = list[tuple[float, float, int]]


def spent_epsilon(history: History, delta: float, accountant: str) -> float:
    """The epsilon at `delta` of every DP-SGD step in `history`, composed (each stage keeps
    its own history, cached stages included, so a training's spend is their concatenation)."""
    counting = create_accountant(accountant)
    counting.history = [tuple(entry) for entry in history if entry[2]]
    return float(counting.get_epsilon(delta=delta)) if counting.history else 0.0


def composed_epsilon(
    stages: Sequence[StageSteps], noise: float, delta: float, accountant: str
) -> float:
    """The epsilon at `delta` of every stage run with noise multiplier `noise`, composed."""
    return spent_epsilon([(noise, s.sample_rate, s.steps) for s in stages], delta, accountant)


def shared_noise(
    stages: Sequence[StageSteps],
    epsilon: float,
    delta: float,
    accountant: str,
    tolerance: float = 0.01,
) -> float:
    """The smallest noise multiplier (to `tolerance` in epsilon) whose composition over all
    `stages` stays within `epsilon`; a SpecError when no noise would do."""
    low, high = 0.0, 1.0
    while composed_epsilon(stages, high, delta, accountant) > epsilon:
        low, high = high, high * 2
        if high > LARGEST_NOISE:
            steps = ", ".join(f"{s.stage} {s.steps}" for s in stages)
            raise SpecError(
                f"privacy: epsilon {epsilon} at delta {delta} cannot be met with these steps "
                f"({steps}); train fewer epochs or allow a larger epsilon"
            )
    for _ in range(BISECTIONS):
        middle = (low + high) / 2
        spent = composed_epsilon(stages, middle, delta, accountant)
        if spent > epsilon:
            low = middle
        else:
            high = middle
            if epsilon - spent < tolerance:
                break
    return high
