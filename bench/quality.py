"""Benchmark: test quality of the teacher against the reference family (tuned gradient
boosting and spline logistic regression, assay.modeling.reference) on the spec's own split
(adult.test for Adult), plus the ablations: without pretraining, and LoRA vs full
fine-tuning. All models are trained in this one run, so the gaps are like for like.

Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from assay.config import Spec, load_spec
from assay.data.fingerprint import frame_digest
from assay.data.labels import labels
from assay.data.reader import read_table
from assay.data.split import Split, split_batches
from assay.data.store import BatchRecord
from assay.modeling.evaluation import binary_metrics
from assay.modeling.reference import ReferenceFamily, fit_reference
from assay.modeling.rows import training_rows
from assay.modeling.teacher import PretrainOutcome, finetune_stage, pretrain_stage

# (name, pretrained?, fine-tune method): the first row is the configured teacher.
VARIANTS = (
    ("teacher: pretrain + LoRA", True, "lora"),
    ("ablation: pretrain + full fine-tune", True, "full"),
    ("ablation: no pretrain + full fine-tune", False, "full"),
    ("ablation: no pretrain + LoRA", False, "lora"),
)


def main(spec_path: str, profile: str | None = None) -> int:
    spec = load_spec(spec_path, profile)
    split = spec_split(spec)
    y_test = labels(split.test, spec)
    family, rows = _reference_rows(split, spec, y_test)
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as scratch:
        root = Path(scratch)
        pretrained, folders = _pretrain_both(split, spec, root)
        for name, use_pretrained, method in VARIANTS:
            start, folder = folders[use_pretrained], root / name.replace(" ", "_")
            row = _finetuned_row(split, spec, y_test, method, start, folder)
            pre_seconds = pretrained.seconds if use_pretrained else 0.0
            rows[name] = {**row, "seconds": pre_seconds + row["finetune_seconds"]}
            print(
                f"{name}: auc {rows[name]['roc_auc']:.4f} acc {rows[name]['accuracy']:.4f} "
                f"in {rows[name]['seconds']:.1f}s"
            )
    _print_table(rows)
    print(json.dumps(_result(spec, split, family, pretrained, rows)))
    return 0


def _reference_rows(
    split: Split, spec: Spec, y_test: np.ndarray
) -> tuple[ReferenceFamily, dict[str, dict]]:
    """Fit the reference family once (timed as a whole) and score each member on the test rows:
    the baselines every teacher variant is compared with."""
    started = time.perf_counter()
    family = fit_reference(split.train, split.valid, spec)
    seconds = time.perf_counter() - started
    rows = {
        f"reference: {member}": {
            **binary_metrics(y_test, model.predict_proba(split.test)),
            "chosen": member == family.chosen_member,
            "seconds": seconds,
        }
        for member, model in family.best.items()
    }
    return family, rows


def _pretrain_both(
    split: Split, spec: Spec, scratch: Path
) -> tuple[PretrainOutcome, dict[bool, Path]]:
    """Run the pretraining stage as configured and with pretraining off (the tokenizer alone), so
    each variant fine-tunes from one of the two folders, keyed by whether it is pretrained."""
    folders = {True: scratch / "pretrained", False: scratch / "scratch"}
    pretrained = pretrain_stage(split, spec, folders[True])
    off = spec.pretrain.model_copy(update={"enabled": False})
    pretrain_stage(split, spec.model_copy(update={"pretrain": off}), folders[False])
    print(
        f"pretraining: {pretrained.rows} rows, {pretrained.seconds:.1f}s, "
        f"loss {pretrained.epoch_loss}"
    )
    return pretrained, folders


def _finetuned_row(
    split: Split, spec: Spec, y_test: np.ndarray, method: str, start: Path, folder: Path
) -> dict:
    """Fine-tune one variant with `method` from the folder `start` into `folder`: its test
    metrics, parameter counts, best epoch and fine-tuning time."""
    tuned_spec = spec.model_copy(
        update={"finetune": spec.finetune.model_copy(update={"method": method})}
    )
    outcome = finetune_stage(split, tuned_spec, start, folder)
    return {
        **binary_metrics(y_test, np.load(outcome.test_scores)),
        "trainable_params": outcome.trainable_params,
        "total_params": outcome.total_params,
        "best_epoch": outcome.best_epoch,
        "finetune_seconds": outcome.seconds,
    }


def _result(
    spec: Spec,
    split: Split,
    family: ReferenceFamily,
    pretrained: PretrainOutcome,
    rows: dict[str, dict],
) -> dict:
    """The JSON summary: the configured teacher against the chosen reference member, with
    sizes, times, peak memory and every model's rounded figures."""
    teacher = rows[VARIANTS[0][0]]
    reference = rows[f"reference: {family.chosen_member}"]
    return {
        "bench": "quality",
        "profile": spec.profile,
        "test_rows": len(split.test),
        "train_rows": len(training_rows(split, spec)),
        "pretrain_rows": pretrained.rows,
        "pretrain_seconds": round(pretrained.seconds, 1),
        "teacher_seconds": round(teacher["seconds"], 1),
        "teacher_auc": round(teacher["roc_auc"], 4),
        "teacher_accuracy": round(teacher["accuracy"], 4),
        "reference": family.describe(),
        "reference_auc": round(reference["roc_auc"], 4),
        "reference_accuracy": round(reference["accuracy"], 4),
        "teacher_minus_reference_auc": round(teacher["roc_auc"] - reference["roc_auc"], 4),
        "teacher_minus_reference_accuracy": round(teacher["accuracy"] - reference["accuracy"], 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "models": {k: {m: round(float(v), 4) for m, v in r.items()} for k, r in rows.items()},
    }


def spec_split(spec: Spec) -> Split:
    """The spec's split of its bundled files, exactly as the train flow makes it."""
    batches = []
    for path in spec.bundled:
        frame = read_table(path, spec)
        record = BatchRecord(frame_digest(frame), path.name, "", len(frame), True, "")
        batches.append((record, frame))
    return split_batches(batches, spec)


def _print_table(rows: dict[str, dict]) -> None:
    print(f"\n{'model':42} {'ROC AUC':>8} {'accuracy':>8} {'trainable':>10} {'seconds':>8}")
    for name, r in rows.items():
        params = f"{r['trainable_params']:,}" if "trainable_params" in r else "-"
        print(
            f"{name:42} {r['roc_auc']:8.4f} {r['accuracy']:8.4f} {params:>10} {r['seconds']:8.1f}"
        )
