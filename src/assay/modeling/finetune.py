"""Supervised fine-tuning of the classifier: LoRA adapters on the encoder's linear layers
with the head trained in full (or everything, for comparison), class-weighted loss, early
stopping on validation ROC AUC, and the best epoch's weights kept."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from sklearn.metrics import roc_auc_score
from torch import nn

from assay.config import FinetuneSpec
from assay.modeling.encoder import EncoderConfig, RecordClassifier, predict_proba, tensors
from assay.modeling.loop import batches, lr_at, progress, seed_everything, set_lr, steps_per_epoch
from assay.modeling.tokenizer import Encoded

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
) -> FinetuneResult:
    """Fine-tune from a pretrained encoder (or random weights when encoder_state is None)."""
    rng = seed_everything(seed)
    base = RecordClassifier(config)
    if encoder_state is not None:
        base.encoder.load_state_dict(encoder_state)
    total_params = sum(p.numel() for p in base.parameters())
    adapter = lora_config(settings) if settings.method == "lora" else None
    model = get_peft_model(base, adapter) if adapter else base
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.01)
    counts = np.bincount(y_train, minlength=2).astype(np.float64)
    weights = counts.sum() / (2 * counts) if settings.class_weights else np.ones(2)
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))
    targets = torch.from_numpy(y_train.astype(np.int64))
    total = settings.epochs * steps_per_epoch(len(train), settings.batch_size)
    history: dict[str, list[float]] = {"train_loss": [], "valid_auc": [], "valid_loss": []}
    best_auc, best_epoch, best_state, stale, step = -1.0, 0, None, 0, 0
    started = time.perf_counter()
    with progress(total, f"fine-tune ({settings.method})") as bar:
        for epoch in range(1, settings.epochs + 1):
            model.train()
            losses = []
            for index in batches(len(train), settings.batch_size, rng):
                # learning rate, forward / backward, log
                set_lr(optimizer, lr_at(step, total, settings.learning_rate))
                loss = loss_fn(model(*tensors(train.take(index))), targets[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                losses.append(loss.item())
                step += 1
                bar.update()
            # evaluate; keep the best epoch; stop when validation AUC stops improving
            p_valid = predict_proba(model, valid).numpy()
            auc = float(roc_auc_score(y_valid, p_valid))
            history["train_loss"].append(float(np.mean(losses)))
            history["valid_auc"].append(auc)
            history["valid_loss"].append(_log_loss(y_valid, p_valid))
            bar.set_postfix(epoch=epoch, valid_auc=f"{auc:.4f}")
            if auc > best_auc:
                best_auc, best_epoch, stale = auc, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                if stale >= settings.patience:
                    bar.total = step
                    break
    model.load_state_dict(best_state)
    if settings.class_weights:
        _restore_prior(model, counts)
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


@torch.no_grad()
def _restore_prior(model: nn.Module, counts: np.ndarray) -> None:
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


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
