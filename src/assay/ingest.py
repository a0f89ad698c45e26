"""Ingesting one file: check the path, parse, validate, then accept or quarantine it.

These are the steps the ingest flow calls; each takes and returns plain values. A file inside
ASSAY_HOME/landing belongs to assay and is moved (to archive/ or quarantine/) once its outcome
is committed; a file anywhere else is only read. A path that fails the check in
assay.data.paths is never opened: it is rejected, with its reason recorded in quarantine/.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import stat
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from assay.config import Spec
from assay.data.atomic import TEMP_PREFIX, copy_atomic, write_json_atomic
from assay.data.csv_lines import BadLines
from assay.data.fingerprint import file_digest
from assay.data.paths import CheckedPath
from assay.data.reader import one_line, read_batch
from assay.data.store import BatchStore, Quarantine
from assay.data.transform import RowCounts
from assay.errors import ReadError
from assay.home import Home
from assay.validation.report import WrittenReport

Status = Literal["accepted", "duplicate", "quarantined", "missing", "rejected"]
STATUSES: tuple[Status, ...] = ("accepted", "duplicate", "quarantined", "rejected", "missing")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# open(O_NOFOLLOW) on a name that is gone or became a link (ELOOP; EMLINK on FreeBSD)
_GONE_OR_LINK = {errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EMLINK}


@dataclass(frozen=True)
class Parsed:
    """A parsed frame, or the one-line reason the file could not be parsed."""

    frame: pd.DataFrame | None
    error: str | None
    changed: bool = False  # the path no longer named the file that passed the path check
    counts: RowCounts = field(
        default_factory=RowCounts
    )  # rows the filter or the label rule left out
    bad_lines: BadLines | None = None  # malformed records skipped (source.bad_lines: skip)


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
    superseded: tuple[str, ...] = ()  # batches this file's new batch replaced
    filtered: int = 0  # rows left out by source.filter
    dropped_labels: int = 0  # rows whose label is neither class (label.other: drop)
    skipped_lines: int = 0  # malformed records set aside (source.bad_lines: skip)
    skipped_dir: str | None = None  # where they are kept

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def not_found(path: Path) -> IngestOutcome:
    """A path that names no file: nothing to keep, so it is reported, not quarantined."""
    return IngestOutcome(path=str(path), status="missing", reason="no such file")


def parse(path: Path, spec: Spec, *, name: str | None = None) -> Parsed:
    """Parse errors are outcomes, not exceptions: the file goes to quarantine with the reason.
    OSError (a disk or mount problem) still raises, so the shell can retry it."""
    try:
        read = read_batch(path, spec, name=name)
        return Parsed(read.frame, None, counts=read.counts, bad_lines=read.bad_lines)
    except ReadError as exc:
        return Parsed(None, str(exc))


def parse_checked(checked: CheckedPath, spec: Spec) -> Parsed:
    """Parse exactly the file that passed the path check. It is opened without following a
    link (and without blocking on a FIFO), its inode compared with the checked one, and read
    through that descriptor: a file swapped for a link after the check is never read."""
    try:
        fd = os.open(checked.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in _GONE_OR_LINK:
            return Parsed(None, None, changed=True)
        raise  # a disk or permission problem: the shell retries it
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != checked.identity:
            return Parsed(None, None, changed=True)
        return parse(_descriptor_path(fd), spec, name=checked.path.name)
    finally:
        os.close(fd)


def _descriptor_path(fd: int) -> Path:
    """A path that opens the same file as `fd` (Linux /proc, else the BSD/macOS /dev/fd)."""
    proc = Path(f"/proc/self/fd/{fd}")
    return proc if proc.exists() else Path(f"/dev/fd/{fd}")


def owned_by_assay(path: Path, home: Home) -> bool:
    """Files in the landing folder are assay's to move; anything else is the user's."""
    return path.resolve().is_relative_to(home.landing.resolve())


def accept(
    path: Path, parsed: Parsed, validation: WrittenReport, spec: Spec, home: Home
) -> IngestOutcome:
    """Store the batch (once per content) and archive a landing file after the commit. Lines
    the reader skipped go to quarantine first, as their own file: nothing is lost."""
    frame, report = parsed.frame, validation.report
    assert frame is not None, "accept takes a parsed frame"
    skipped_dir = _quarantine_skipped(path, parsed.bad_lines, home)
    labelled = spec.label.column in frame.columns
    stored = BatchStore(home.batches).put(
        frame,
        source=path,
        labelled=labelled,
        warnings=[o.describe() for o in report.warnings],
        parsed_with=spec.parse_digest(),
    )
    if owned_by_assay(path, home):
        # Named by the file's own bytes: archiving the same file again rewrites nothing new.
        copy_atomic(path, home.archive / f"{file_digest(path)[:12]}-{path.name}")
        path.unlink()
    record = stored.record
    if stored.status == "retired":
        status: Status = "duplicate"
        reason = (
            f"same content as retired batch {record.hash[:12]}: "
            f"`assay batches restore {record.hash[:12]}` to train on it again"
        )
    elif stored.created:
        status, reason = "accepted", report.reason
    elif stored.superseded:
        status, reason = "accepted", f"same content as batch {record.hash[:12]}, active again"
    else:
        status, reason = "duplicate", f"same content as batch {record.hash[:12]}"
    if stored.superseded:
        old = ", ".join(h[:12] for h in stored.superseded)
        reason += f"; supersedes batch {old} (the same file, parsed by an earlier spec)"
    left_out = parsed.counts.describe()
    skipped = len(parsed.bad_lines or ())
    if skipped:
        left_out = "; ".join(
            p for p in (left_out, f"{skipped:,} malformed record(s) quarantined") if p
        )
    return IngestOutcome(
        path=str(path),
        status=status,
        reason=f"{reason}; {left_out}" if left_out else reason,
        rows=record.rows,
        batch=record.hash,
        report=str(validation.page),
        superseded=stored.superseded,
        filtered=parsed.counts.filtered,
        dropped_labels=parsed.counts.dropped_labels,
        skipped_lines=skipped,
        skipped_dir=skipped_dir,
    )


def _quarantine_skipped(path: Path, bad: BadLines | None, home: Home) -> str | None:
    """The skipped records' lines, byte for byte, in a quarantine folder of their own, with
    their line numbers in the report."""
    if not bad:
        return None
    home.quarantine.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX, dir=home.quarantine.parent) as staging:
        lines = Path(staging) / f"{path.name}.skipped-lines"
        lines.write_bytes(bad.content())
        reason = (
            f"{len(bad):,} malformed record(s) skipped from {path.name} (source.bad_lines: "
            f"skip), first at line {bad.starts[0]:,}; the rest of the file was accepted"
        )
        details = {"stage": "read", "of": str(path), "lines": bad.lines, "records": bad.starts}
        folder = Quarantine(home.quarantine).put(lines, reason=reason, report=details, move=True)
    return str(folder)


def quarantine(
    path: Path,
    reason: str,
    home: Home,
    *,
    stage: str,
    validation: WrittenReport | None = None,
) -> IngestOutcome:
    """Keep the original bytes with the reason beside them; nothing is lost or changed."""
    reason = one_line(reason)  # a validation reason can quote cells: keep it one short line
    details: dict[str, Any] = {"stage": stage}
    if validation is not None:
        details["validation"] = validation.report.to_dict()
    folder = Quarantine(home.quarantine).put(
        path, reason=reason, report=details, move=owned_by_assay(path, home)
    )
    return IngestOutcome(
        path=str(path),
        status="quarantined",
        reason=reason,
        quarantine_dir=str(folder),
        report=str(validation.page) if validation is not None else None,
    )


def reject(checked: CheckedPath, home: Home) -> IngestOutcome:
    """Record a refused path in quarantine/ without opening it. An entry in the landing folder
    follows its record there by rename, which moves the entry itself (a link stays a link, a
    FIFO is never opened); an entry anywhere else is not assay's, so it is only named."""
    folder = _refusal_record(home.quarantine, checked)
    if checked.movable and not _move_entry(checked.path, folder / _safe_name(checked.path.name)):
        _write_refusal_report(folder, checked, moved=False)
    return IngestOutcome(
        path=checked.given, status="rejected", reason=checked.reason, quarantine_dir=str(folder)
    )


def _refusal_record(root: Path, checked: CheckedPath) -> Path:
    """reason.txt and report.json in a folder that appears whole (built, then renamed)."""
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=root))
    (staging / "reason.txt").write_text(checked.reason + "\n", encoding="utf-8")
    _write_refusal_report(staging, checked, moved=checked.movable)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = root / f"{stamp}-rejected-{_safe_name(checked.path.name)}"
    os.rename(staging, final)
    return final


def _write_refusal_report(folder: Path, checked: CheckedPath, *, moved: bool) -> None:
    write_json_atomic(
        folder / "report.json",
        {
            "source": checked.given,
            "resolved": str(checked.path),
            "reason": checked.reason,
            "stage": "path",
            "kind": checked.kind,
            "moved_here": moved,
            "rejected_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )


def _move_entry(entry: Path, target: Path) -> bool:
    """rename(2) moves a directory entry without opening it; False if it cannot (the entry
    vanished, or landing/ is another filesystem), and the entry then stays where it is."""
    try:
        os.rename(entry, target)
    except OSError:
        return False
    return True


def _safe_name(name: str) -> str:
    return _UNSAFE.sub("_", name).lstrip(".")[:100] or "file"
