"""The compression gate: does the int8 student behave like what it replaces, fit the size
budget and answer in time? Each check is a plain value; a failure names the check."""

from __future__ import annotations

from assay.config import CompressionGateSpec
from assay.gates import Check, GateReport

PARITY_TOLERANCE = 1e-4  # fp32 ONNX vs torch, max abs logit difference


def compression_gate(
    limits: CompressionGateSpec,
    *,
    agreement: float,
    int8_auc: float,
    teacher_auc: float,
    int8_bytes: int,
    teacher_bytes: int,
    latency_ms: float,
    parity: float,
) -> GateReport:
    """Compare the measurements with the spec's limits (and the fixed export parity)."""
    return GateReport(
        "compression",
        (
            Check("export parity (max abs logit diff)", parity, PARITY_TOLERANCE, "<="),
            Check("int8 vs fp32 agreement", agreement, limits.min_agreement, ">="),
            Check("ROC AUC drop vs teacher", teacher_auc - int8_auc, limits.max_auc_drop, "<="),
            Check(
                "size ratio vs fp32 teacher",
                int8_bytes / teacher_bytes,
                limits.max_size_ratio,
                "<=",
            ),
            Check("batch-1 p50 latency ms", latency_ms, limits.max_latency_ms, "<="),
        ),
    )
