"""The compression gate: does the int8 student behave like what it replaces, fit the size
budget and answer in time? Each check is a plain value; a failure names the check."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from assay.config import CompressionGateSpec

PARITY_TOLERANCE = 1e-4  # fp32 ONNX vs torch, max abs logit difference


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    limit: float
    rule: str  # ">=" or "<="

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.rule == ">=" else self.value <= self.limit

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return f"{self.name} {self.value:.6g} (must be {self.rule} {self.limit:.6g}): {verdict}"


@dataclass(frozen=True)
class GateReport:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def reason(self) -> str:
        if self.passed:
            return f"passed ({len(self.checks)} checks)"
        return "compression gate failed: " + "; ".join(c.describe() for c in self.failed)

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "checks": [{**asdict(c), "passed": c.passed} for c in self.checks],
        }


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
        )
    )
