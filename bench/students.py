"""Benchmark: what the student can learn. Trains the reference family and the teacher once on
the spec's split (full profile by default), then runs the compression stage once per variant of
the spec's `compression` section on the same teacher and references, and reports each int8
student's test ROC AUC beside the ensemble it learns from, the teacher and the reference.
Whether the gap to the reference is a matter of distillation settings or of the student is
read from the table (docs/benchmarks.md). The last line printed is JSON.

    assay bench students                                   # the variants below
    ASSAY_STUDENT_VARIANTS='{"T=1": {"temperature": 1.0}}' assay bench students
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from assay.compression.stage import compress_stage
from assay.config import CompressionSpec, Spec, load_spec
from assay.data.labels import labels
from assay.modeling.teacher import finetune_stage, pretrain_stage
from assay.stages.baseline import fit_and_score_baseline
from bench.quality import spec_split

# Each variant is merged over the spec's compression section (a nested section key by key)
VARIANTS: dict[str, dict[str, Any]] = {
    "as specified": {},
    "no pruning": {"pruning": {"enabled": False}},
    "T=1": {"temperature": 1.0},
    "soft labels only": {"soft_weight": 1.0},
    "2 student layers": {"student": {"num_layers": 2}},
}


def variant(spec: Spec, change: dict[str, Any]) -> Spec:
    section = spec.compression.model_dump()
    for key, value in change.items():
        section[key] = {**section[key], **value} if isinstance(value, dict) else value
    return spec.model_copy(update={"compression": CompressionSpec(**section)})


def main(spec_path: str, profile: str | None = None) -> int:
    spec = load_spec(spec_path, profile)
    variants = json.loads(os.environ.get("ASSAY_STUDENT_VARIANTS", "null")) or VARIANTS
    split = spec_split(spec)
    y_test = labels(split.test, spec)
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as scratch:
        root = Path(scratch)
        reference = fit_and_score_baseline(split, spec, root / "baseline")
        pretrain_stage(split, spec, root / "pretrain")
        teacher = finetune_stage(split, spec, root / "pretrain", root / "teacher")
        rows = {}
        for name, change in variants.items():
            started = time.perf_counter()
            out = compress_stage(
                split,
                variant(spec, change),
                root / "teacher",
                root / name,
                Path(reference.model_dir),
            )
            ensemble = roc_auc_score(y_test, np.load(out.ensemble_test_scores))
            rows[name] = {
                "int8_auc": round(out.measurements["int8_auc"], 4),
                "unpruned_fp32_auc": round(out.measurements["unpruned_fp32_auc"], 4),
                "ensemble_auc": round(float(ensemble), 4),
                "int8_bytes": out.sizes["model.int8.onnx"],
                "compression_gate": out.passed,
                "seconds": round(time.perf_counter() - started, 1),
            }
            print(f"{name:24} int8 {rows[name]['int8_auc']:.4f}  ensemble {ensemble:.4f}")
        teacher_auc = roc_auc_score(y_test, np.load(teacher.test_scores))
        reference_auc = roc_auc_score(y_test, np.load(reference.test_scores))
    result = {
        "spec": spec.name,
        "profile": spec.profile,
        "teacher_auc": round(float(teacher_auc), 4),
        "reference_auc": round(float(reference_auc), 4),
        "reference": reference.name,
        "variants": rows,
    }
    print(json.dumps(result))
    return 0
