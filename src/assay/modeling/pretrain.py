"""Self-supervised pretraining: masked cell modelling on every non-test row.

A share of the cells in each row is replaced by [MASK] (their numeric value hidden too) and the
model predicts the original token from the rest of the row: it learns how columns relate
without needing a label, so unlabelled rows count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from assay.config import PretrainSpec
from assay.modeling.encoder import EncoderConfig, MaskedCellModel, tensors
from assay.modeling.loop import Steps, lr_at, progress, seed_everything, set_lr, steps_per_epoch
from assay.modeling.sizes import pretrain_sizes
from assay.modeling.tokenizer import Encoded
from assay.privacy.dpsgd import PrivateSGD

IGNORE = -100  # label value cross-entropy skips


@dataclass
class PretrainResult:
    model: MaskedCellModel
    epoch_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def mask_cells(
    ids: torch.Tensor,
    values: torch.Tensor,
    numeric: torch.Tensor,
    attention: torch.Tensor,
    rate: float,
    mask_id: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, ...]:
    """Masked copies of the inputs and the labels (original ids at masked cells, else IGNORE).
    [CLS] and padding are never masked; every row gets at least one masked cell."""
    maskable = attention.bool().clone()
    maskable[:, 0] = False
    draw = torch.rand(ids.shape, generator=generator) < rate
    chosen = draw & maskable
    # Guarantee one masked cell per row: otherwise a row contributes nothing to the loss.
    empty = ~chosen.any(dim=1)
    if empty.any():
        scores = torch.rand(ids.shape, generator=generator) * maskable
        chosen[empty, scores[empty].argmax(dim=1)] = True
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    return (
        torch.where(chosen, torch.full_like(ids, mask_id), ids),
        values.masked_fill(chosen, 0.0),
        numeric.masked_fill(chosen, 0.0),
        attention,
        labels,
    )


def pretrain(
    data: Encoded,
    config: EncoderConfig,
    settings: PretrainSpec,
    *,
    mask_id: int,
    seed: int,
    initial: MaskedCellModel | None = None,
    private: PrivateSGD | None = None,
) -> PretrainResult:
    """Train a MaskedCellModel; returns it with the mean loss of each epoch. With `private`,
    by DP-SGD: each row's loss is the mean over its own masked cells (the plain loss averages
    over the batch's masked cells, so a row's weight would depend on the other rows)."""
    rng = seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    model = initial or MaskedCellModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)

    def batch_loss(index: np.ndarray) -> torch.Tensor:
        """A freshly masked batch, forward, loss."""
        *inputs, labels = mask_cells(
            *tensors(data.take(index)), settings.mask_rate, mask_id, generator
        )
        logits = model(*inputs)
        if private is None:
            return loss_fn(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        return per_row_loss(logits, labels)

    sizes = pretrain_sizes(len(data), batch_size=settings.batch_size, epochs=settings.epochs)
    steps = Steps.of(
        model, list(model.parameters()), optimizer, batch_loss, len(data), sizes.batch_size,
        rng, private,
    )  # fmt: skip
    total = sizes.epochs * steps_per_epoch(len(data), sizes.batch_size)
    result = PretrainResult(model)
    started, step = time.perf_counter(), 0
    desc = f"pretrain (masked cells; batch {sizes.batch_size}, {sizes.epochs} epochs"
    desc += ", DP-SGD)" if private else ")"
    with progress(total, desc) as bar:
        for epoch in range(sizes.epochs):
            model.train()
            losses = []
            for index in steps.batches():
                set_lr(steps.optimizer, lr_at(step, total, settings.learning_rate))
                losses.append(steps.take(index))
                step += 1
                bar.update()
                bar.set_postfix(epoch=epoch + 1, loss=f"{np.nanmean(losses[-50:]):.3f}")
            result.epoch_loss.append(float(np.nanmean(losses)))
    steps.finish()
    result.seconds = time.perf_counter() - started
    return result


def per_row_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mean over rows of each row's mean cross-entropy over its masked cells (a row with
    none counts 0)."""
    cells = nn.functional.cross_entropy(
        logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="none"
    )
    masked = (labels != IGNORE).to(cells.dtype)
    return ((cells * masked).sum(1) / masked.sum(1).clamp(min=1)).mean()
