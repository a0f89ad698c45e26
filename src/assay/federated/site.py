"""A site's side of a round, on its own split in its own home: it reads the setup and the
round's global adapter from the exchange, scores that adapter on its validation rows, trains it
on its own training rows (training rounds) and writes back only the trained tensors and a
report. Its rows never leave this process."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from assay.config import Spec
from assay.data.labels import labels
from assay.data.split import Split
from assay.federated.adapter import load_shared, shared_state
from assay.federated.exchange import (
    Census,
    Exchange,
    SiteReport,
    read_tensors,
    write_json,
    write_tensors,
)
from assay.federated.setup import Setup, read_setup
from assay.modeling.encoder import predict_proba, tensors
from assay.modeling.loop import Steps, lr_at, seed_everything
from assay.modeling.rows import training_rows
from assay.modeling.sizes import supervised_sizes
from assay.modeling.tokenizer import Encoded


@dataclass(frozen=True)
class SiteData:
    """A site as it answers the coordinator: its name, its own split, and the spec that reads
    labels and training rows from it (the census and every round need all three)."""

    name: str
    split: Split
    spec: Spec


def take_census(exchange: Exchange, local: SiteData, fingerprint: str) -> Census:
    """The site's counts and snapshot fingerprint, written for the coordinator."""
    split, spec = local.split, local.spec
    y = labels(training_rows(split, spec), spec)
    census = Census(local.name, fingerprint, len(y), int(y.sum()), len(split.valid))
    write_json(exchange.census(local.name), census)
    return census


def answer_round(exchange: Exchange, round_: int, local: SiteData, *, train: bool) -> SiteReport:
    """Score the round's global adapter on the validation rows; with `train`, train it for the
    setup's local epochs and write the update beside the report."""
    started = time.perf_counter()
    site, split, spec = local.name, local.split, local.spec
    setup, initial = read_setup(exchange)
    model = setup.model(initial)
    load_shared(model, read_tensors(exchange.global_state(round_)))
    valid = setup.tokenizer.encode(split.valid)
    auc = float(roc_auc_score(labels(split.valid, spec), predict_proba(model, valid).numpy()))
    rows, loss, sent = training_rows(split, spec), None, 0
    if train:
        seed = setup.seed + round_ * 1000 + int(hashlib.sha256(site.encode()).hexdigest()[:6], 16)
        loss = _local_training(
            model, setup, round_, setup.tokenizer.encode(rows), labels(rows, spec), seed
        )
        sent = write_tensors(exchange.update(round_, site), shared_state(model))
    seconds = time.perf_counter() - started
    report = SiteReport(site, round_, len(rows), len(split.valid), auc, loss, seconds, sent)
    write_json(exchange.report(round_, site), report)
    return report


def _local_training(
    model: nn.Module, setup: Setup, round_: int, train: Encoded, y: np.ndarray, seed: int
) -> float:
    """Local epochs of plain steps at the round's point of one schedule over all rounds (warm-up,
    then cosine decay); a fresh optimizer each round, as FedAvg's clients keep no state."""
    rng = seed_everything(seed)
    settings = setup.settings
    sizes = supervised_sizes(len(y), batch_size=settings.batch_size, epochs=1, patience=None)
    weights = torch.tensor(setup.class_weights if settings.class_weights else (1.0, 1.0))
    loss_fn = nn.CrossEntropyLoss(weight=weights.float())
    targets = torch.from_numpy(y.astype(np.int64))
    trainable = [p for p in model.parameters() if p.requires_grad]
    lr = lr_at(round_ - 1, setup.rounds, settings.learning_rate)
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01)

    def batch_loss(index: np.ndarray) -> torch.Tensor:
        return loss_fn(model(*tensors(train.take(index))), targets[index])

    steps = Steps.of(model, trainable, optimizer, batch_loss, len(y), sizes.batch_size, rng, None)
    model.train()
    losses = [steps.take(index) for _ in range(setup.local_epochs) for index in steps.batches()]
    model.eval()
    return float(np.mean(losses))
