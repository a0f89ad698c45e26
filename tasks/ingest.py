"""Prefect tasks for ingest: thin wrappers that add retries and artifacts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_table_artifact

from assay import ingest as core
from assay.data.reader import one_line
from assay.home import Home
from assay.registry.audit import AuditEntry, AuditLog
from assay.validation.check import ValidationReport, check
from assay.validation.report import ReportName, WrittenReport, write_report
from assay.validation.suite import gx
from tasks.policy import IO_RETRIES

# The library steps, each run as a task with retries (they read and write files).
parse_file = task(core.parse_checked, name="parse-file", **IO_RETRIES)
accept_batch = task(core.accept, name="accept-batch", **IO_RETRIES)
quarantine_file = task(core.quarantine, name="quarantine-file", **IO_RETRIES)
reject_path = task(core.reject, name="reject-path", **IO_RETRIES)


@task(name="record-outcome", **IO_RETRIES)
def record_outcome(home: Home, outcome: core.IngestOutcome) -> None:
    """Every quarantine, rejected path and superseded batch is an audit record beside the
    promotions and rollbacks."""
    audit = AuditLog(home.audit)
    if outcome.status in ("quarantined", "rejected"):
        evidence = {
            "file": str(outcome.path),
            "quarantine": str(outcome.quarantine_dir),
            "status": outcome.status,
        }
        audit.append(AuditEntry(outcome.status, outcome.reason, evidence=evidence))
    if outcome.skipped_dir:
        audit.append(
            AuditEntry(
                "lines-quarantined",
                f"{outcome.skipped_lines:,} malformed record(s) of {Path(outcome.path).name}",
                evidence={"file": str(outcome.path), "quarantine": outcome.skipped_dir},
            )
        )
    for old in outcome.superseded:
        audit.append(
            AuditEntry(
                "batch-superseded",
                f"{Path(outcome.path).name} parsed again by the current spec",
                evidence={"batch": old, "superseded_by": str(outcome.batch)},
            )
        )


@task(name="validate-batch", **IO_RETRIES)
def validate_batch(
    frame: pd.DataFrame,
    suite: gx.ExpectationSuite,
    home: Home,
    name: ReportName,
    optional: tuple[str, ...] = (),
) -> WrittenReport:
    """Run the suite (`optional`: columns the batch may lack), write the HTML/JSON report,
    and show the outcome table in the UI."""
    report = check(frame, suite, optional)
    page = write_report(report, home.reports / "validation", name.stem, name.title)
    publish_validation(report, name.title)
    return WrittenReport(report, page)


def publish_validation(report: ValidationReport, title: str) -> None:
    create_table_artifact(
        key="validation",
        table=report.table(),
        description=f"**{title}**: {report.reason}",
    )


@task(name="publish-ingest-summary", **IO_RETRIES)
def publish_summary(outcomes: list[core.IngestOutcome]) -> None:
    create_table_artifact(
        key="ingest-summary",
        table=[
            {
                "file": _cell(Path(o.path).name),
                "status": o.status,
                "rows": o.rows,
                "left out": o.filtered + o.dropped_labels,
                "skipped lines": o.skipped_lines,
                "reason": o.reason,
            }
            for o in outcomes
        ],
        description=f"{len(outcomes)} file(s): "
        + ", ".join(f"{sum(o.status == s for o in outcomes)} {s}" for s in core.STATUSES),
    )


def _cell(text: str) -> str:
    """A file name as a table cell: one line, and not read as a formula if the table is
    exported to a spreadsheet (a leading =, +, -, @ gets a quote, the OWASP advice)."""
    text = one_line(text, 120)
    return "'" + text if text.startswith(("=", "+", "-", "@")) else text
