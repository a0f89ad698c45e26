"""The data gate: every critical expectation of the suite must hold on the whole snapshot
(the suite may have changed since ingest). Keyed by the snapshot with the suite's digest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from assay.data.store import BatchRecord
from assay.stages.stage import Stage, Table
from assay.validation.check import check
from assay.validation.report import write_report
from assay.validation.suite import gx

NAME = "data-gate"


@dataclass(frozen=True)
class GateResult:
    """The data gate's verdict on a whole snapshot, with the report a person reads."""

    passed: bool
    reason: str
    report_html: str
    warnings: int
    batches: int = 0
    checks: list[dict] = field(default_factory=list)  # one row per expectation


def data_gate(
    batches: list[tuple[BatchRecord, pd.DataFrame]], suite: gx.ExpectationSuite, run_dir: Path
) -> GateResult:
    """Validate every accepted row together, and write the report a person reads."""
    frame = pd.concat([f for _, f in batches], ignore_index=True)
    report = check(frame, suite)
    page = write_report(report, run_dir, NAME, f"Data gate: {len(batches)} batch(es)")
    return GateResult(
        report.passed, report.reason, str(page), len(report.warnings), len(batches), report.table()
    )


def run(
    folder: Path, batches: list[tuple[BatchRecord, pd.DataFrame]], suite: gx.ExpectationSuite
) -> GateResult:
    return data_gate(batches, suite, folder)


def figures(gate: GateResult) -> dict[str, float]:
    return {"passed": float(gate.passed), "warnings": gate.warnings}


def gates(gate: GateResult) -> dict[str, dict]:
    verdict = asdict(gate)
    return {"data": {k: verdict[k] for k in ("passed", "reason", "report_html", "warnings")}}


def reports(gate: GateResult) -> list[Table]:
    return [
        Table(
            "validation", gate.checks, f"**Data gate on {gate.batches} batch(es)**: {gate.reason}"
        )
    ]


STAGE = Stage(
    NAME,
    (),
    (),
    run,
    GateResult,
    figures=figures,
    files=lambda gate: [("", Path(gate.report_html))],
    gates=gates,
    reports=reports,
)
