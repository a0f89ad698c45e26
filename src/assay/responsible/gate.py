"""The fairness gate: each configured limit checked against the assessed disparity of the
candidate's shipped decisions on the test split; and the degeneracy check of those decisions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from assay.config import DecisionSpec, FairnessLimit
from assay.gates import Check, GateReport
from assay.responsible.fairness import FairnessReport


def fairness_gate(limits: list[FairnessLimit], report: FairnessReport) -> GateReport:
    """Differences must stay at or below their limit, ratios at or above it. A feature with
    fewer than two groups large enough to judge fails its check, saying so: a gate that cannot
    measure what it was asked to never passes silently."""
    checks = []
    for limit in limits:
        assessed = report.feature(limit.feature)
        value = assessed.disparity(limit.metric).value
        rule = ">=" if limit.metric.endswith("_ratio") else "<="
        note = ""
        if not assessed.assessable:
            note = (
                f"fewer than two groups of {limit.feature} have {report.min_group_size} test "
                "rows; lower fairness.min_group_size or add rows"
            )
        elif assessed.excluded:
            note = f"small groups left out: {', '.join(assessed.excluded)}"
        checks.append(Check(f"{limit.metric} on {limit.feature}", value, limit.limit, rule, note))
    return GateReport("fairness", tuple(checks))


def decision_gate(
    decided: np.ndarray, sensitive: dict[str, pd.Series], decision: DecisionSpec
) -> GateReport:
    """Decisions nearly all one class (or no group of a sensitive feature ever chosen) make
    every disparity near zero: a fairness gate 'passed' by a model that decides nothing."""
    share = float(max(decided.mean(), 1 - decided.mean())) if len(decided) else 1.0
    majority = "positive" if decided.mean() > 0.5 else "negative"
    checks = [
        Check(
            "share of test decisions in one class",
            share,
            decision.max_class_share,
            "<=",
            f"{majority}; threshold rule {decision.threshold}",
        )
    ]
    for feature, groups in sensitive.items():
        chosen = pd.Series(decided).groupby(groups.to_numpy()).max()
        checks.append(
            Check(f"groups of {feature} with a positive decision", float(chosen.sum()), 1, ">=")
        )
    return GateReport("decision", tuple(checks), warn_only=decision.on_degenerate == "warn")
