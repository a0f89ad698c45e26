"""Supervised fine-tuning of the classifier: LoRA adapters on the encoder's linear layers
with the head trained in full (or everything, for comparison), class-weighted loss, early
stopping on validation ROC AUC, and the best epoch's weights kept."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from torch import nn

from assay.config import FinetuneSpec
from assay.modeling.encoder import EncoderConfig, RecordClassifier, tensors
from assay.modeling.loop import seed_everything, train_with_early_stopping
from assay.modeling.tokenizer import Encoded
from assay.privacy.dpsgd import PrivateSGD

# Every linear layer inside the BERT blocks: attention projections and feed-forward.
LORA_TARGETS = ["query", "key", "value", "dense"]


@dataclass
class FinetuneResult:
    """The merged classifier, the adapter (LoRA only) and what training looked like."""

    model: RecordClassifier
    adapter_state: dict[str, torch.Tensor] | None
    adapter_config: LoraConfig | None
    trainable_params: int
    total_params: int
    best_epoch: int
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def trainable_fraction(self) -> float:
        return self.trainable_params / self.total_params


def lora_config(settings: FinetuneSpec) -> LoraConfig:
    return LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=LORA_TARGETS,
        # The head and the per-column numeric embeddings are small and task-specific.
        modules_to_save=["classifier", "numeric_embedding"],
    )


def finetune(
    train: Encoded,
    y_train: np.ndarray,
    valid: Encoded,
    y_valid: np.ndarray,
    config: EncoderConfig,
    settings: FinetuneSpec,
    *,
    seed: int,
    encoder_state: dict[str, torch.Tensor] | None = None,
    private: PrivateSGD | None = None,
    balance: np.ndarray | None = None,
) -> FinetuneResult:
    """Fine-tune from a pretrained encoder (or random weights when encoder_state is None);
    with `private`, by DP-SGD (each row's weighted loss its own: a mean over rows, where the
    plain loss divides by the batch's sum of weights). The class weights and the restored
    prior count the labels in `balance` (default: y_train; under privacy, public rows)."""
    rng = seed_everything(seed)
    base = RecordClassifier(config)
    if encoder_state is not None:
        base.encoder.load_state_dict(encoder_state)
    total_params = sum(p.numel() for p in base.parameters())
    adapter = lora_config(settings) if settings.method == "lora" else None
    model = get_peft_model(base, adapter) if adapter else base
    trainable = [p for p in model.parameters() if p.requires_grad]
    counts = np.bincount(y_train if balance is None else balance, minlength=2).astype(float)
    loss_fn = class_weighted_loss(counts, settings.class_weights, private is not None)
    targets = torch.from_numpy(y_train.astype(np.int64))
    started = time.perf_counter()
    best_epoch, history = train_with_early_stopping(
        model,
        trainable,
        lambda index: loss_fn(model(*tensors(train.take(index))), targets[index]),
        len(train),
        valid,
        y_valid,
        settings,
        rng,
        f"fine-tune ({settings.method}{', DP-SGD' if private else ''})",
        private,
    )
    if settings.class_weights:
        restore_prior(model, counts)
    adapter_state = None
    if adapter is not None:
        adapter_state = {k: v.clone() for k, v in get_peft_model_state_dict(model).items()}
        model = model.merge_and_unload()
    model.eval()
    return FinetuneResult(
        model=model,
        adapter_state=adapter_state,
        adapter_config=adapter,
        trainable_params=sum(p.numel() for p in trainable),
        total_params=total_params,
        best_epoch=best_epoch,
        history=history,
        seconds=time.perf_counter() - started,
    )


def class_weighted_loss(
    counts: np.ndarray, weighted: bool, per_row: bool
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy with each class weighted by how rare it is in `counts` (1 each when not
    `weighted`). `per_row` (DP-SGD): each row's weighted loss its own, a mean over rows; the
    plain loss divides by the batch's sum of weights."""
    weights = counts.sum() / (2 * counts) if weighted else np.ones(2)
    class_weights = torch.tensor(weights, dtype=torch.float32)
    if not per_row:
        return nn.CrossEntropyLoss(weight=class_weights)

    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (nn.functional.cross_entropy(logits, y, reduction="none") * class_weights[y]).mean()

    return loss


@torch.no_grad()
def restore_prior(model: nn.Module, counts: np.ndarray) -> None:
    """A class-weighted loss trains the head as if classes were balanced; adding the log prior
    odds to the positive logit gives probabilities (and accuracy at 0.5) for the real mix.
    Applied to the trained head (under LoRA, peft's trainable copy of it)."""
    heads = [
        m
        for name, m in model.named_modules()
        if "classifier" in name and isinstance(m, nn.Linear) and m.bias.requires_grad
    ]
    for head in heads:
        head.bias[1] += float(np.log(counts[1] / counts[0]))
