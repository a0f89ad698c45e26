"""The fairness gate: each configured limit checked against the assessed disparity of the
candidate's shipped decisions on the test split."""

from __future__ import annotations

from assay.config import FairnessLimit
from assay.gates import Check, GateReport
from assay.responsible.fairness import FairnessReport


def fairness_gate(limits: list[FairnessLimit], report: FairnessReport) -> GateReport:
    """Differences must stay at or below their limit, ratios at or above it."""
    checks = []
    for limit in limits:
        value = report.feature(limit.feature).disparity(limit.metric).value
        rule = ">=" if limit.metric.endswith("_ratio") else "<="
        checks.append(Check(f"{limit.metric} on {limit.feature}", value, limit.limit, rule))
    return GateReport("fairness", tuple(checks))
