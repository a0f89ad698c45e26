"""The fine-tuning stage of a federated spec: the rounds in place of central fine-tuning, the
teacher saved as fine-tuning saves one, with the federation's record in its outcome."""

from __future__ import annotations

from pathlib import Path

from assay.config import Spec
from assay.data.split import Split
from assay.federated.coordinator import Ask, federated_teacher
from assay.federated.exchange import Exchange
from assay.modeling.teacher import Teacher, TeacherOutcome, peak_rss_mb, save_teacher


def federated_finetune_stage(
    split: Split, spec: Spec, pretrained: Path, folder: Path, exchange: Exchange, ask: Ask
) -> TeacherOutcome:
    """Rounds across the spec's sites through `ask`; the coordinator's own test rows score
    the teacher (its validation rows are not used: the sites' are)."""
    tokenizer, model, record = federated_teacher(spec, pretrained, exchange, ask)
    history = {
        "valid_auc": [r["valid_auc"] for r in record["rounds"]],
        "bytes": [float(r["bytes"]) for r in record["rounds"]],
    }
    scores = save_teacher(Teacher(tokenizer, model), split, history, folder)
    return TeacherOutcome(
        folder=str(folder),
        test_scores=str(scores),
        history=history,
        trainable_params=record.pop("trainable_params"),
        total_params=sum(p.numel() for p in model.parameters()),
        best_epoch=record["best_round"],
        seconds=record["seconds"],
        peak_rss_mb=peak_rss_mb(),
        federation=record,
    )
