"""Structured pruning of the distilled student: whole attention heads and feed-forward units are
removed (the matrices shrink, so the exported file and every batch get smaller and faster), the
least important first, then a short distillation recovers what the cut cost.

Importance is the first-order Taylor estimate of how much the distillation loss would change if
a group's weights were zeroed, |sum over the group of w * dL/dw| on a sample of pool rows
(Molchanov et al., "Importance Estimation for Neural Network Pruning", 2019)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from transformers.models.bert.modeling_bert import BertLayer

from assay.compression.distill import Targets
from assay.config import PruningSpec
from assay.modeling.encoder import RecordClassifier, keep_heads_and_units, predict_proba
from assay.modeling.tokenizer import Encoded


@dataclass(frozen=True)
class PruningReport:
    """What pruning removed and what it cost (validation ROC AUC before, right after the cut,
    and after recovery)."""

    heads_before: list[int]
    heads_after: list[int]
    units_before: list[int]
    units_after: list[int]
    params_before: int
    params_after: int
    valid_auc_before: float
    valid_auc_pruned: float
    valid_auc_recovered: float
    seconds: float
    not_kept: str = ""  # why the unpruned student ships instead ('' when the pruned one does)

    def to_dict(self) -> dict:
        return asdict(self) | {"summary": self.summary()}

    def refused(self, why: str) -> PruningReport:
        return replace(self, not_kept=why)

    def summary(self) -> str:
        done = (
            f"heads {sum(self.heads_before)}->{sum(self.heads_after)}, "
            f"feed-forward units {sum(self.units_before)}->{sum(self.units_after)}, "
            f"params {self.params_before:,}->{self.params_after:,}; valid AUC "
            f"{self.valid_auc_before:.4f} -> {self.valid_auc_pruned:.4f} (cut) -> "
            f"{self.valid_auc_recovered:.4f} (recovered)"
        )
        return (
            f"{done}; not kept, the unpruned student ships: {self.not_kept}"
            if self.not_kept
            else done
        )


def blocks(model: RecordClassifier) -> list[BertLayer]:
    return list(model.encoder.bert.encoder.layer)


def _contribution(linear: nn.Linear, dim: int) -> torch.Tensor:
    """sum(w * grad) per output row (dim=0, bias included) or per input column (dim=1)."""
    product = linear.weight * linear.weight.grad
    if dim == 1:
        return product.sum(0)
    return product.sum(1) + linear.bias * linear.bias.grad


@torch.enable_grad()
def importance(
    model: RecordClassifier, batch_loss: Callable[[np.ndarray], torch.Tensor], rows: np.ndarray
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(head scores, unit scores) per block: |Taylor estimate of the loss change| when the
    head's or unit's weights are removed, accumulated over `rows` (dropout off)."""
    model.eval()
    model.zero_grad(set_to_none=True)
    for start in range(0, len(rows), 512):
        batch_loss(rows[start : start + 512]).backward()
    scores = []
    with torch.no_grad():
        for layer in blocks(model):
            attention = layer.attention.self
            per_dim = sum(
                _contribution(getattr(attention, n), 0) for n in ("query", "key", "value")
            )
            per_dim = per_dim + _contribution(layer.attention.output.dense, 1)
            heads = per_dim.view(-1, attention.attention_head_size).sum(1).abs()
            units = (
                _contribution(layer.intermediate.dense, 0) + _contribution(layer.output.dense, 1)
            ).abs()
            scores.append((heads, units))
    model.zero_grad(set_to_none=True)
    return scores


def _keep(scores: torch.Tensor, share: float) -> list[int]:
    """Indices of the most important entries after removing floor(share * n), at least one
    kept, in their original order."""
    n = len(scores)
    keep = max(1, n - math.floor(share * n))
    return sorted(torch.topk(scores, keep).indices.tolist())


def prune(
    model: RecordClassifier,
    scores: Iterable[tuple[torch.Tensor, torch.Tensor]],
    settings: PruningSpec,
) -> None:
    """Shrink every block of `model` in place, and its config with it (so the saved model
    reloads at the pruned sizes)."""
    for layer, (heads, units) in zip(blocks(model), scores, strict=True):
        keep_heads_and_units(layer, _keep(heads, settings.heads), _keep(units, settings.units))
    model.config.layer_heads, model.config.layer_units, _ = shape(model)


def shape(model: RecordClassifier) -> tuple[list[int], list[int], int]:
    """Heads per block, feed-forward units per block, parameter count."""
    layers = blocks(model)
    return (
        [layer.attention.self.num_attention_heads for layer in layers],
        [layer.intermediate.dense.out_features for layer in layers],
        sum(p.numel() for p in model.parameters()),
    )


def valid_auc(model: RecordClassifier, valid: Encoded, y_valid: np.ndarray) -> float:
    return float(roc_auc_score(y_valid, predict_proba(model, valid).numpy()))


def prune_and_recover(
    model: RecordClassifier,
    targets: Targets,
    valid: Encoded,
    y_valid: np.ndarray,
    settings: PruningSpec,
    recover: Callable[[RecordClassifier], object],
    *,
    seed: int,
) -> PruningReport:
    """Score on a seeded sample of the distillation pool, cut, then `recover(model)` (a short
    distillation on the same targets)."""
    started = time.perf_counter()
    heads_before, units_before, params_before = shape(model)
    auc_before = valid_auc(model, valid, y_valid)
    rows = np.random.default_rng(seed).permutation(len(targets.pool))[: settings.importance_rows]
    scores = importance(model, lambda index: targets.loss(model, index), rows)
    prune(model, scores, settings)
    auc_pruned = valid_auc(model, valid, y_valid)
    recover(model)
    heads_after, units_after, params_after = shape(model)
    return PruningReport(
        heads_before=heads_before,
        heads_after=heads_after,
        units_before=units_before,
        units_after=units_after,
        params_before=params_before,
        params_after=params_after,
        valid_auc_before=auc_before,
        valid_auc_pruned=auc_pruned,
        valid_auc_recovered=valid_auc(model, valid, y_valid),
        seconds=time.perf_counter() - started,
    )
