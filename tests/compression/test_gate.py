"""The compression gate names what failed; a corrupted quantization is caught."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from assay.compression.gate import compression_gate
from assay.compression.quantize import quantize
from assay.config import CompressionGateSpec
from assay.serving.scorer import OnnxScorer

LIMITS = CompressionGateSpec()
GOOD = {
    "agreement": 0.999,
    "int8_auc": 0.925,
    "teacher_auc": 0.926,
    "int8_bytes": 60_000,
    "teacher_bytes": 700_000,
    "latency_ms": 0.05,
    "parity": 1e-6,
}


def test_all_checks_pass_within_limits():
    report = compression_gate(LIMITS, **GOOD)
    assert report.passed and report.reason == "passed (5 checks)"


def test_failure_names_each_failed_check_value_and_limit():
    report = compression_gate(LIMITS, **{**GOOD, "int8_bytes": 90_000, "latency_ms": 3.0})
    assert not report.passed
    assert [c.name for c in report.failed] == [
        "size ratio vs fp32 teacher",
        "batch-1 p50 latency ms",
    ]
    assert report.reason == (
        "compression gate failed: size ratio vs fp32 teacher 0.128571 (must be <= 0.1): FAILED; "
        "batch-1 p50 latency ms 3 (must be <= 1): FAILED"
    )


def test_corrupted_quantization_scale_fails_the_gate(exported, tmp_path):
    _, tokenizer_dir, path, _, test = exported
    int8 = quantize(path, tmp_path / "int8.onnx")
    broken = onnx.load(str(int8))
    scales = [i for i in broken.graph.initializer if i.name.endswith("_scale")]
    assert scales, "dynamic quantization stores weight scales"
    for init in scales:
        init.CopyFrom(numpy_helper.from_array(-40 * numpy_helper.to_array(init), init.name))
    onnx.save(broken, str(tmp_path / "broken.onnx"))
    fp32 = OnnxScorer.load(path, tokenizer_dir).predict_proba(test)
    bad = OnnxScorer.load(tmp_path / "broken.onnx", tokenizer_dir).predict_proba(test)
    agreement = float(np.mean((fp32 >= 0.5) == (bad >= 0.5)))
    report = compression_gate(LIMITS, **{**GOOD, "agreement": agreement})
    assert not report.passed
    assert report.reason.startswith("compression gate failed: int8 vs fp32 agreement")
