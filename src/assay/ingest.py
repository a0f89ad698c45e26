"""Ingesting one file: parse, validate, then accept into the store or quarantine it.

These are the steps the ingest flow calls; each takes and returns plain values. A file inside
ASSAY_HOME/landing belongs to assay and is moved (to archive/ or quarantine/) once its outcome
is committed; a file anywhere else is only read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from assay.config import Spec
from assay.data.atomic import copy_atomic
from assay.data.fingerprint import file_digest
from assay.data.reader import read_table
from assay.data.store import BatchStore, Quarantine
from assay.errors import ReadError
from assay.home import Home
from assay.validation.check import ValidationReport

Status = Literal["accepted", "duplicate", "quarantined", "missing"]


@dataclass(frozen=True)
class Parsed:
    """A parsed frame, or the one-line reason the file could not be parsed."""

    frame: pd.DataFrame | None
    error: str | None


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one file, for the CLI, the flow artifact and the tests."""

    path: str
    status: Status
    reason: str
    rows: int = 0
    batch: str | None = None
    quarantine_dir: str | None = None
    report: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def not_found(path: Path) -> IngestOutcome:
    """A path that names no file: nothing to keep, so it is reported, not quarantined."""
    return IngestOutcome(path=str(path), status="missing", reason="no such file")


def parse(path: Path, spec: Spec) -> Parsed:
    """Parse errors are outcomes, not exceptions: the file goes to quarantine with the reason.
    OSError (a disk or mount problem) still raises, so the shell can retry it."""
    try:
        return Parsed(read_table(path, spec), None)
    except ReadError as exc:
        return Parsed(None, str(exc))


def owned_by_assay(path: Path, home: Home) -> bool:
    """Files in the landing folder are assay's to move; anything else is the user's."""
    return path.resolve().is_relative_to(home.landing.resolve())


def accept(
    path: Path,
    frame: pd.DataFrame,
    report: ValidationReport,
    spec: Spec,
    home: Home,
    report_path: Path | None = None,
) -> IngestOutcome:
    """Store the batch (once per content) and archive a landing file after the commit."""
    labelled = spec.label.column in frame.columns
    record, created = BatchStore(home.batches).put(
        frame, source=path, labelled=labelled, warnings=[o.describe() for o in report.warnings]
    )
    if owned_by_assay(path, home):
        # Named by the file's own bytes: archiving the same file again rewrites nothing new.
        copy_atomic(path, home.archive / f"{file_digest(path)[:12]}-{path.name}")
        path.unlink()
    status: Status = "accepted" if created else "duplicate"
    reason = report.reason if created else f"same content as batch {record.hash[:12]}"
    return IngestOutcome(
        path=str(path),
        status=status,
        reason=reason,
        rows=record.rows,
        batch=record.hash,
        report=str(report_path) if report_path else None,
    )


def quarantine(
    path: Path,
    reason: str,
    home: Home,
    *,
    stage: str,
    report: ValidationReport | None = None,
    report_path: Path | None = None,
) -> IngestOutcome:
    """Keep the original bytes with the reason beside them; nothing is lost or changed."""
    details: dict[str, Any] = {"stage": stage}
    if report is not None:
        details["validation"] = report.to_dict()
    folder = Quarantine(home.quarantine).put(
        path, reason=reason, report=details, move=owned_by_assay(path, home)
    )
    return IngestOutcome(
        path=str(path),
        status="quarantined",
        reason=reason,
        quarantine_dir=str(folder),
        report=str(report_path) if report_path else None,
    )
