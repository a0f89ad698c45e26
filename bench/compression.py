"""Benchmark: what compression buys. Trains the teacher and the student on the spec's split
(full profile by default), then measures, in this one run, file size, batch-1 p50/p95 latency
and batch-256 throughput at one thread and at all cores for: torch fp32 teacher, torch fp32
student before and after pruning, ONNX fp32 student, ONNX int8 student (dynamic: what ships),
plus rows for the unpruned student in int8 and for static (QDQ) int8. "All cores" is the better
of one call at a time on every core and one single-thread call per core at once. Quality is
ROC AUC on the test split. Timings exclude tokenizing. The last line printed is JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from assay.compression.export import export_onnx
from assay.compression.quantize import quantize
from assay.compression.stage import UNPRUNED, CompressionOutcome, compress_stage
from assay.compression.timing import Runner, latency_ms, onnx_runner, throughput
from assay.config import Spec, load_spec
from assay.data.labels import labels
from assay.data.split import Split
from assay.modeling.encoder import (
    WEIGHTS,
    RecordClassifier,
    load_classifier,
    predict_proba,
    tensors,
)
from assay.modeling.teacher import Teacher, finetune_stage, pretrain_stage
from assay.modeling.tokenizer import Encoded
from assay.serving.session import session
from bench.quality import spec_split

CORES = os.cpu_count() or 1


def main(spec_path: str, profile: str | None = None) -> int:
    spec = load_spec(spec_path, profile)
    split = spec_split(spec)
    y_test = labels(split.test, spec)
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as scratch:
        root = Path(scratch)
        pretrain_stage(split, spec, root / "pretrain")
        finetune_stage(split, spec, root / "pretrain", root / "teacher")
        outcome = compress_stage(split, spec, root / "teacher", root / "student")
        rows = _measured_rows(split, outcome, root)
        for name, row in rows.items():
            row["roc_auc"] = float(roc_auc_score(y_test, row.pop("scores")))
            print(
                f"{name:30} auc {row['roc_auc']:.4f} size {row['bytes']:>9,} B  "
                f"p50@1 {row['p50_ms_1t']:.3f} ms  rows/s@1 {row['rows_per_s_1t']:,.0f}  "
                f"rows/s@{CORES} {row['rows_per_s_all_cores']:,.0f}"
            )
        result = _result(spec, outcome, rows)
    print(json.dumps(result))
    return 0


def _measured_rows(split: Split, outcome: CompressionOutcome, root: Path) -> dict[str, dict]:
    """Every model compared, timed on the tokenized test rows: the teacher in torch, the
    student before pruning (when it was pruned), the student in torch, as ONNX fp32, as the
    shipped dynamic int8 and as static (QDQ) int8 calibrated on 2,000 training rows."""
    folder = Path(outcome.folder)
    teacher = Teacher.load(root / "teacher")
    test = teacher.tokenizer.encode(split.test)
    static = quantize(
        folder / "model.fp32.onnx",
        root / "static.int8.onnx",
        method="static",
        calibration=teacher.tokenizer.encode(split.train.head(2000)),
    )
    return {
        "torch fp32 teacher": _torch_row(teacher.model, test, root / "teacher" / WEIGHTS),
        **(_unpruned_rows(folder, test, root) if outcome.pruning else {}),
        "torch fp32 student": _torch_row(load_classifier(folder), test, folder / WEIGHTS),
        "onnx fp32 student": _onnx_row(folder / "model.fp32.onnx", test),
        "onnx int8 student (dynamic)": _onnx_row(folder / "model.int8.onnx", test),
        "onnx int8 student (static QDQ)": _onnx_row(static, test),
    }


def _result(spec: Spec, outcome: CompressionOutcome, rows: dict[str, dict]) -> dict:
    """The JSON summary: the shipped int8 student against the torch teacher (quality, size,
    throughput, latency), the compression stage's gate and measurements, and every row."""
    teacher_row, int8 = rows["torch fp32 teacher"], rows["onnx int8 student (dynamic)"]
    return {
        "bench": "compression",
        "profile": spec.profile,
        "cores": CORES,
        "gate": outcome.gate["reason"],
        "agreement_int8_vs_fp32": outcome.measurements["agreement"],
        "parity_max_abs_logit": outcome.measurements["parity"],
        "int8_auc": round(int8["roc_auc"], 4),
        "teacher_auc": round(teacher_row["roc_auc"], 4),
        "auc_drop": round(teacher_row["roc_auc"] - int8["roc_auc"], 4),
        "size_ratio_teacher_onnx_over_int8": round(
            outcome.sizes["teacher.fp32.onnx"] / int8["bytes"], 1
        ),
        "size_ratio_teacher_weights_over_int8": round(teacher_row["bytes"] / int8["bytes"], 1),
        "throughput_ratio_int8_over_torch_teacher_1t": round(
            int8["rows_per_s_1t"] / teacher_row["rows_per_s_1t"], 1
        ),
        "throughput_ratio_int8_over_torch_teacher_all_cores": round(
            int8["rows_per_s_all_cores"] / teacher_row["rows_per_s_all_cores"], 1
        ),
        f"throughput_ratio_int8_over_torch_teacher_{CORES}t_intra_op": round(
            int8[f"rows_per_s_{CORES}t"] / teacher_row[f"rows_per_s_{CORES}t"], 1
        ),
        "int8_p50_ms_1t": round(int8["p50_ms_1t"], 4),
        "student_params": outcome.student_params,
        "pruning": outcome.pruning["summary"] if outcome.pruning else "off",
        "distill_and_prune_seconds": round(outcome.seconds, 1),
        "models": {k: {m: round(v, 4) for m, v in r.items()} for k, r in rows.items()},
    }


def _unpruned_rows(folder: Path, test: Encoded, scratch: Path) -> dict[str, dict]:
    """The distilled student before pruning, in torch and as int8: what pruning changed."""
    unpruned = load_classifier(folder / UNPRUNED)
    fp32 = export_onnx(unpruned, test, scratch / "unpruned.fp32.onnx")
    return {
        "torch fp32 student (unpruned)": _torch_row(unpruned, test, folder / UNPRUNED / WEIGHTS),
        "onnx int8 student (unpruned)": _onnx_row(
            quantize(fp32, scratch / "unpruned.int8.onnx"), test
        ),
    }


def _timed(runner: Callable[[int], Runner], test: Encoded) -> dict[str, float]:
    """`runner(threads)` scores a batch using that many intra-op threads. Measures p50/p95 of
    batch-1 calls and batch-256 rows/s at one thread and at all cores, the latter both as one
    call at a time on all cores and as one single-thread call per core at once; a model's
    all-cores throughput is the better of the two."""
    row: dict[str, float] = {}
    for threads in sorted({1, CORES}):
        run = runner(threads)
        p50, p95 = latency_ms(run, test)
        row |= {
            f"p50_ms_{threads}t": p50,
            f"p95_ms_{threads}t": p95,
            f"rows_per_s_{threads}t": throughput(run, test),
        }
    row[f"rows_per_s_{CORES}x1t"] = throughput(runner(1), test, workers=CORES)
    row["rows_per_s_all_cores"] = max(row[f"rows_per_s_{CORES}t"], row[f"rows_per_s_{CORES}x1t"])
    torch.set_num_threads(CORES)
    return row


def _torch_row(model: RecordClassifier, test: Encoded, weights: Path) -> dict:
    """A torch model in eval mode; size is its safetensors file."""
    model.eval()

    def runner(threads: int) -> Runner:
        torch.set_num_threads(threads)

        @torch.no_grad()
        def run(part: Encoded) -> object:
            return model(*tensors(part))

        return run

    return {
        "bytes": weights.stat().st_size,
        **_timed(runner, test),
        "scores": predict_proba(model, test).numpy(),
    }


def _onnx_row(path: Path, test: Encoded) -> dict:
    logits = session(path, CORES).run(["logits"], test.feeds())[0]
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return {
        "bytes": path.stat().st_size,
        **_timed(lambda threads: onnx_runner(session(path, threads)), test),
        "scores": shifted[:, 1] / shifted.sum(axis=1),
    }
