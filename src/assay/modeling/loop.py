"""Pieces shared by the pretraining and fine-tuning loops: schedule, batching, progress."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

WARMUP = 0.05  # share of steps spent warming up: short, the models are small


def lr_at(step: int, total: int, peak: float) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak; a pure function of the step."""
    warmup = max(1, int(total * WARMUP))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def batches(rows: int, size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """A fresh seeded shuffle each call; the last short batch is kept."""
    order = rng.permutation(rows)
    for start in range(0, rows, size):
        yield order[start : start + size]


def steps_per_epoch(rows: int, size: int) -> int:
    return math.ceil(rows / size)


def progress(total: int, desc: str) -> tqdm:
    """A progress bar with rate and ETA; quiet when ASSAY_PROGRESS=0."""
    return tqdm(
        total=total,
        desc=desc,
        unit="step",
        mininterval=1.0,
        disable=os.environ.get("ASSAY_PROGRESS", "1") == "0",
        file=sys.stderr,
        dynamic_ncols=True,
    )


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch (initialisation, dropout) and return the numpy generator for shuffling."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
