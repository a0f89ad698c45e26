"""The coordinator's side: it writes the setup, then each round sends the global adapter,
has every site answer (`ask`: the shell runs each site's `site-round` deployment and waits),
and averages the updates (FedAvg weighted by rows). The best round by the sites' validation
ROC AUC (weighted by their validation rows) becomes the teacher, saved as fine-tuning saves
one, so compression, the responsible steps and registration run on it unchanged."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from peft import PeftModel

from assay.config import Spec
from assay.federated.adapter import fedavg, ffa_lora_classifier, load_shared, shared_state
from assay.federated.exchange import (
    Census,
    Exchange,
    SiteReport,
    read_json,
    read_tensors,
    write_tensors,
)
from assay.federated.setup import Setup, balanced_weights, write_setup
from assay.modeling.encoder import EncoderConfig, RecordClassifier, holds_weights, load_encoder
from assay.modeling.finetune import restore_prior
from assay.modeling.tokenizer import RecordTokenizer

# How the shell runs one round at every site: ("train" | "evaluate", round)
Ask = Callable[[str, int], None]


def read_census(exchange: Exchange, sites: list[str]) -> list[Census]:
    return [Census(**read_json(exchange.census(site))) for site in sites]


def federated_teacher(
    spec: Spec, pretrained: Path, exchange: Exchange, ask: Ask
) -> tuple[RecordTokenizer, RecordClassifier, dict]:
    """Run the rounds; the best round's teacher (LoRA merged), its tokenizer and the
    federation's record: sites, rows, rounds, bytes, per-site and per-round AUC."""
    federation = spec.federation
    census = read_census(exchange, federation.sites)
    setup, model = _start(spec, pretrained, census)
    exchange.clear_rounds()
    write_setup(exchange, setup, model)
    state, rows = shared_state(model), [c.rows for c in census]
    rounds: list[dict] = []
    best, stale, started = (-1.0, 0, state), 0, time.perf_counter()
    for round_ in range(1, federation.rounds + 2):  # the last one only scores the last average
        training = round_ <= federation.rounds
        sent = write_tensors(exchange.global_state(round_), state) * len(census)
        ask("train" if training else "evaluate", round_)
        reports = [SiteReport(**read_json(exchange.report(round_, c.site))) for c in census]
        auc = float(
            np.average([r.valid_auc for r in reports], weights=[r.valid_rows for r in reports])
        )
        rounds.append(_round_record(round_, auc, reports, sent))
        if auc > best[0]:
            best, stale = (auc, round_, state), 0
        else:
            stale += 1
        if not training or (federation.patience and stale >= federation.patience):
            break
        updates = [read_tensors(exchange.update(round_, c.site)) for c in census]
        state = fedavg(updates, rows)
    _, best_round, best_state = best
    load_shared(model, best_state)
    if setup.settings.class_weights:
        positives = sum(c.positives for c in census)
        restore_prior(model, np.array([sum(rows) - positives, positives], dtype=float))
    merged = model.merge_and_unload()
    merged.eval()
    return (
        setup.tokenizer,
        merged,
        {
            "sites": [c.site for c in census],
            "site_rows": {c.site: c.rows for c in census},
            "rounds": rounds,
            "best_round": best_round,
            "trainable_params": sum(v.numel() for v in best_state.values()),
            "site_auc": {r["site"]: r["valid_auc"] for r in rounds[best_round - 1]["sites"]},
            "seconds": time.perf_counter() - started,
        },
    )


def _start(spec: Spec, pretrained: Path, census: list[Census]) -> tuple[Setup, PeftModel]:
    """The setup and the coordinator's model: the pretrained encoder with fresh adapters."""
    tokenizer = RecordTokenizer.load(pretrained / "tokenizer")
    config = EncoderConfig.from_spec(spec.model, tokenizer.vocab_size, tokenizer.length)
    settings, federation = spec.finetune, spec.federation
    weights = balanced_weights(sum(c.rows for c in census), sum(c.positives for c in census))
    setup = Setup(
        tokenizer, config, settings, spec.model.seed, federation.rounds,
        federation.local_epochs, weights,
    )  # fmt: skip
    encoder = load_encoder(pretrained).state_dict() if holds_weights(pretrained) else None
    return setup, ffa_lora_classifier(config, settings, spec.model.seed, encoder)


def _round_record(round_: int, auc: float, reports: list[SiteReport], sent: int) -> dict:
    return {
        "round": round_,
        "valid_auc": auc,
        "bytes": sent + sum(r.update_bytes for r in reports),
        "sites": [
            {"site": r.site, "valid_auc": r.valid_auc, "train_loss": r.train_loss} for r in reports
        ],
    }
