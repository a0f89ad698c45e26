"""Pieces shared by the pretraining and fine-tuning loops: schedule, batching, progress."""

from __future__ import annotations

import copy
import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from sklearn.metrics import log_loss, roc_auc_score
from torch import nn
from tqdm.auto import tqdm

from assay.modeling.encoder import predict_proba, use_per_row_positions
from assay.modeling.sizes import supervised_sizes
from assay.modeling.tokenizer import Encoded
from assay.privacy.dpsgd import PrivateSGD, make_private

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


class Schedule(Protocol):
    """The settings a supervised loop reads (FinetuneSpec and DistillSpec both have them)."""

    epochs: int | None
    patience: int | None
    batch_size: int | None
    learning_rate: float


@dataclass
class Steps:
    """How a loop draws its batches and takes a step: a seeded shuffle and a plain step
    (gradient norm clipped to 1), or with `private` DP-SGD's Poisson batches and private
    steps (each row's gradient clipped, noise added; `batch_loss` must be a mean over rows)."""

    batches: Callable[[], Iterator[np.ndarray]]
    take: Callable[[np.ndarray], float]  # one step on the rows at an index; the batch's loss
    optimizer: torch.optim.Optimizer
    finish: Callable[[], object]  # after the last step (DP-SGD: the hooks come off)

    @classmethod
    def of(
        cls,
        model: nn.Module,
        trainable: list[torch.Tensor],
        optimizer: torch.optim.Optimizer,
        batch_loss: Callable[[np.ndarray], torch.Tensor],
        rows: int,
        batch_size: int,
        rng: np.random.Generator,
        private: PrivateSGD | None,
    ) -> Steps:
        if private is not None:
            use_per_row_positions(model, enabled=True)
            model.train()  # Opacus validates the layers as they train
            dp = make_private(private, model, optimizer, rows, batch_size)

            def finish() -> None:
                dp.unwrap()
                use_per_row_positions(model, enabled=False)

            return cls(dp.batches, lambda index: dp.step(batch_loss, index), dp.optimizer, finish)

        def take(index: np.ndarray) -> float:
            loss = batch_loss(index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            return loss.item()

        return cls(lambda: batches(rows, batch_size, rng), take, optimizer, lambda: None)


def train_with_early_stopping(
    model: nn.Module,
    trainable: list[torch.Tensor],
    batch_loss: Callable[[np.ndarray], torch.Tensor],
    rows: int,
    valid: Encoded,
    y_valid: np.ndarray,
    schedule: Schedule,
    rng: np.random.Generator,
    desc: str,
    private: PrivateSGD | None = None,
) -> tuple[int, dict[str, list[float]]]:
    """Train until validation ROC AUC stops improving for `patience` epochs, then load the best
    epoch's weights into `model`. Returns (best epoch, per-epoch history). With `private`,
    DP-SGD: Poisson batches, each row's gradient clipped, noise added (`batch_loss` must then
    be a mean over rows)."""
    sizes = supervised_sizes(
        rows, batch_size=schedule.batch_size, epochs=schedule.epochs, patience=schedule.patience
    )
    optimizer = torch.optim.AdamW(trainable, lr=schedule.learning_rate, weight_decay=0.01)
    steps = Steps.of(model, trainable, optimizer, batch_loss, rows, sizes.batch_size, rng, private)
    total = sizes.epochs * steps_per_epoch(rows, sizes.batch_size)
    history: dict[str, list[float]] = {"train_loss": [], "valid_auc": [], "valid_loss": []}
    best_auc, best_epoch, best_state, stale, step = -1.0, 0, None, 0, 0
    with progress(total, f"{desc} ({sizes.describe()})") as bar:
        for epoch in range(1, sizes.epochs + 1):
            model.train()
            losses = []
            for index in steps.batches():
                # learning rate, forward / backward (DP-SGD: clip each row, add noise), log
                set_lr(steps.optimizer, lr_at(step, total, schedule.learning_rate))
                losses.append(steps.take(index))
                step += 1
                bar.update()
            # evaluate; keep the best epoch; stop when validation AUC stops improving
            p_valid = predict_proba(model, valid).numpy()
            auc = float(roc_auc_score(y_valid, p_valid))
            history["train_loss"].append(float(np.nanmean(losses)))
            history["valid_auc"].append(auc)
            history["valid_loss"].append(float(log_loss(y_valid, p_valid, labels=[0, 1])))
            bar.set_postfix(epoch=epoch, valid_auc=f"{auc:.4f}")
            if auc > best_auc:
                best_auc, best_epoch, stale = auc, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                if stale >= sizes.patience:
                    bar.total = step
                    break
    steps.finish()
    model.load_state_dict(best_state)
    return best_epoch, history
