"""Batch size, epochs and patience from the number of rows, for settings a spec leaves unset.

The defaults once fit Adult only: a batch of 256 on 1,000 rows is 3 optimizer steps per epoch,
too few for the student to learn anything. The rule keeps at least ~30 steps per epoch and a
step budget per stage, so 1,000 rows train long enough and Adult's 26k rows train as before
(batch 256, 12 epochs, patience 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_STEPS_PER_EPOCH = 30
MIN_BATCH, MAX_BATCH = 16, 256
SUPERVISED_STEPS, MIN_EPOCHS, MAX_EPOCHS = 1200, 12, 100
PRETRAIN_STEPS, MIN_PRETRAIN_EPOCHS, MAX_PRETRAIN_EPOCHS = 500, 4, 50


@dataclass(frozen=True)
class Sizes:
    """What one training stage runs with."""

    batch_size: int
    epochs: int
    patience: int

    def describe(self) -> str:
        return f"batch {self.batch_size}, up to {self.epochs} epochs, patience {self.patience}"


def batch_size_for(rows: int, setting: int | None = None) -> int:
    """The setting, or the largest power of two with >= 30 steps per epoch, in [16, 256]."""
    if setting is not None:
        return setting
    fit = max(1, rows // MIN_STEPS_PER_EPOCH)
    return max(MIN_BATCH, min(MAX_BATCH, 1 << (fit.bit_length() - 1)))


def _epochs_for(rows: int, batch: int, steps: int, low: int, high: int) -> int:
    per_epoch = math.ceil(max(rows, 1) / batch)
    return max(low, min(high, math.ceil(steps / per_epoch)))


def supervised_sizes(
    rows: int, *, batch_size: int | None, epochs: int | None, patience: int | None
) -> Sizes:
    """Fine-tuning and distillation: about 1,200 steps, 12 to 100 epochs, patience epochs/4."""
    batch = batch_size_for(rows, batch_size)
    if epochs is None:
        epochs = _epochs_for(rows, batch, SUPERVISED_STEPS, MIN_EPOCHS, MAX_EPOCHS)
    if patience is None:
        patience = max(3, epochs // 4)
    return Sizes(batch, epochs, patience)


def pretrain_sizes(rows: int, *, batch_size: int | None, epochs: int | None) -> Sizes:
    """Masked-cell pretraining: about 500 steps, 4 to 50 epochs (no early stopping)."""
    batch = batch_size_for(rows, batch_size)
    if epochs is None:
        epochs = _epochs_for(rows, batch, PRETRAIN_STEPS, MIN_PRETRAIN_EPOCHS, MAX_PRETRAIN_EPOCHS)
    return Sizes(batch, epochs, 0)
