"""Benchmark: what compression buys. Trains the teacher and the student on the spec's split
(full profile by default), then measures, in this one run, file size, batch-1 p50/p95 latency
and batch-256 throughput at one thread and at all cores for: torch fp32 teacher, torch fp32
student, ONNX fp32 student, ONNX int8 student (dynamic), plus a static-int8 row. Quality is
ROC AUC on the test split. Timings exclude tokenizing. The last line printed is JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from assay.compression.quantize import quantize
from assay.compression.stage import compress_stage
from assay.compression.timing import latency_ms, session, throughput
from assay.config import load_spec
from assay.modeling.baseline import labels
from assay.modeling.encoder import (
    RecordClassifier,
    load_config,
    load_weights,
    predict_proba,
    tensors,
)
from assay.modeling.teacher import Teacher, finetune_stage, pretrain_stage
from assay.modeling.tokenizer import Encoded
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
        folder = Path(outcome.folder)
        teacher = Teacher.load(root / "teacher")
        test = teacher.tokenizer.encode(split.test)
        student = _student(folder)
        static = quantize(
            folder / "model.fp32.onnx",
            root / "static.int8.onnx",
            method="static",
            calibration=teacher.tokenizer.encode(split.train.head(2000)),
        )
        rows = {
            "torch fp32 teacher": _torch_row(
                teacher.model, test, root / "teacher" / "teacher.safetensors"
            ),
            "torch fp32 student": _torch_row(student, test, None),
            "onnx fp32 student": _onnx_row(folder / "model.fp32.onnx", test),
            "onnx int8 student (dynamic)": _onnx_row(folder / "model.int8.onnx", test),
            "onnx int8 student (static QDQ)": _onnx_row(static, test),
        }
        for name, row in rows.items():
            row["roc_auc"] = float(roc_auc_score(y_test, row.pop("scores")))
            print(
                f"{name:32} auc {row['roc_auc']:.4f} size {row['bytes']:>9,} B  "
                f"p50@1 {row['p50_ms_1t']:.3f} ms  thr@{CORES} {row[f'rows_per_s_{CORES}t']:,.0f}/s"
            )
        teacher_row, int8 = rows["torch fp32 teacher"], rows["onnx int8 student (dynamic)"]
        result = {
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
            f"throughput_ratio_int8_over_torch_teacher_{CORES}t": round(
                int8[f"rows_per_s_{CORES}t"] / teacher_row[f"rows_per_s_{CORES}t"], 1
            ),
            "int8_p50_ms_1t": round(int8["p50_ms_1t"], 4),
            "student_params": outcome.student_params,
            "distill_seconds": round(outcome.seconds, 1),
            "models": {k: {m: round(v, 4) for m, v in r.items()} for k, r in rows.items()},
        }
    print(json.dumps(result))
    return 0


def _student(folder: Path) -> RecordClassifier:
    model = RecordClassifier(load_config(folder))
    load_weights(model, folder, "student")
    return model.eval()


def _timed(run_one: Callable[[Encoded], object], test: Encoded) -> dict[str, float]:
    """p50/p95 of batch-1 calls and batch-256 rows/s at one thread and at all cores."""
    row: dict[str, float] = {}
    for threads in sorted({1, CORES}):
        torch.set_num_threads(threads)
        singles = [test.take(slice(i, i + 1)) for i in range(300)]
        for one in singles[:20]:
            run_one(one)
        times = []
        for one in singles:
            started = time.perf_counter()
            run_one(one)
            times.append((time.perf_counter() - started) * 1000)
        row[f"p50_ms_{threads}t"] = float(np.percentile(times, 50))
        row[f"p95_ms_{threads}t"] = float(np.percentile(times, 95))
        batch, done, started = test.take(slice(0, 256)), 0, time.perf_counter()
        while time.perf_counter() - started < 2.0:
            run_one(batch)
            done += 256
        row[f"rows_per_s_{threads}t"] = done / (time.perf_counter() - started)
    torch.set_num_threads(CORES)
    return row


def _torch_row(model: RecordClassifier, test: Encoded, weights: Path | None) -> dict:
    """A torch model in eval mode; size is its safetensors file."""
    model.eval()

    @torch.no_grad()
    def run_one(part: Encoded) -> object:
        return model(*tensors(part))

    size = weights.stat().st_size if weights else sum(p.numel() * 4 for p in model.parameters())
    return {"bytes": size, **_timed(run_one, test), "scores": predict_proba(model, test).numpy()}


def _onnx_row(path: Path, test: Encoded) -> dict:
    row: dict = {"bytes": path.stat().st_size}
    for threads in sorted({1, CORES}):
        sess = session(path, threads)
        p50, p95 = latency_ms(sess, test)
        row |= {
            f"p50_ms_{threads}t": p50,
            f"p95_ms_{threads}t": p95,
            f"rows_per_s_{threads}t": throughput(sess, test),
        }
    logits = session(path, CORES).run(["logits"], test.feeds())[0]
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    row["scores"] = shifted[:, 1] / shifted.sum(axis=1)
    return row
