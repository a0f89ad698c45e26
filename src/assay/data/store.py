"""The accepted-batch store and the quarantine: the only places assay writes data.

Accepted batches are append-only Parquet files named by content hash, each with a JSON record
written last (the record's presence is the commit). Quarantined files are kept byte for byte,
beside a report and a one-line reason. Nothing here is ever rewritten or deleted.

A batch also has a status, kept in an append-only log beside the batches (`batch-status.jsonl`,
the last line for a batch wins): `active` (the default: snapshots use it), `superseded` (the
same source file was parsed again, by a spec that reads it differently: the new batch replaces
it, so a file's rows are never trained on twice) or `retired` (taken out by a person, with a
reason; `restore` makes it active again).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from assay.data.atomic import (
    TEMP_PREFIX,
    append_json_line,
    copy_atomic,
    read_json_lines,
    remove_stale_temps,
    write_atomic,
    write_json_atomic,
)
from assay.data.fingerprint import file_digest, frame_digest
from assay.errors import AssayError


class StoreError(AssayError):
    """A request about batches that cannot be met (an unknown or ambiguous batch id)."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class BatchRecord:
    """What the store knows about one accepted batch."""

    hash: str
    source: str
    source_sha256: str
    rows: int
    labelled: bool
    accepted_at: str
    warnings: tuple[str, ...] = ()
    parsed_with: str = ""  # digest of the spec sections that parsed it ("" before it was kept)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "warnings": list(self.warnings)}


BatchStatus = Literal["active", "superseded", "retired"]


@dataclass(frozen=True)
class StatusChange:
    """One line of the status log: a batch left or re-entered the snapshots, and why."""

    batch: str
    status: BatchStatus
    reason: str
    at: str


@dataclass(frozen=True)
class Stored:
    """What put() did: the batch, whether it is new, and which batches it superseded."""

    record: BatchRecord
    created: bool
    superseded: tuple[str, ...] = ()
    status: BatchStatus = "active"


class BatchStore:
    """Append-only store of accepted batches under one folder, with their status log beside."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.status_log = root.parent / "batch-status.jsonl"

    def _data(self, digest: str) -> Path:
        return self.root / f"{digest}.parquet"

    def _record(self, digest: str) -> Path:
        return self.root / f"{digest}.json"

    def put(
        self,
        frame: pd.DataFrame,
        *,
        source: Path,
        labelled: bool,
        warnings: list[str],
        parsed_with: str = "",
    ) -> Stored:
        """Store a batch unless the same content is already there. Active batches parsed from
        the same source file (same bytes) into other content are superseded by this one: a
        spec that reads the file differently replaces its rows instead of adding them again.
        A retired batch stays retired (its status says so)."""
        digest = frame_digest(frame)
        source_sha256 = file_digest(source)
        record = self.get_record(digest)
        created = record is None
        if record is None:
            remove_stale_temps(self.root)
            write_atomic(self._data(digest), lambda p: frame.to_parquet(p, index=False))
            record = BatchRecord(
                hash=digest,
                source=source.name,
                source_sha256=source_sha256,
                rows=len(frame),
                labelled=labelled,
                accepted_at=_now(),
                warnings=tuple(warnings),
                parsed_with=parsed_with,
            )
            write_json_atomic(self._record(digest), record.to_dict())
        statuses = self.statuses()
        if statuses.get(digest) == "retired":
            return Stored(record, created, status="retired")
        if statuses.get(digest) == "superseded":
            self.set_status(digest, "active", f"parsed again from {source.name}")
        older = tuple(
            r.hash
            for r in self.records()
            if r.source_sha256 == source_sha256
            and r.hash != digest
            and statuses.get(r.hash, "active") == "active"
        )
        for old in older:
            self.set_status(old, "superseded", f"{source.name} parsed again into {digest[:12]}")
        return Stored(record, created, older)

    def statuses(self) -> dict[str, BatchStatus]:
        """The current status of every batch that ever changed status (others are active)."""
        return {change.batch: change.status for change in self.status_changes()}

    def status_changes(self) -> list[StatusChange]:
        """The status log, oldest first."""
        return [StatusChange(**raw) for raw in read_json_lines(self.status_log)]

    def set_status(self, digest: str, status: BatchStatus, reason: str) -> StatusChange:
        change = StatusChange(digest, status, reason, _now())
        append_json_line(self.status_log, asdict(change))
        return change

    def active(self) -> list[BatchRecord]:
        """The batches a snapshot trains on: neither superseded nor retired."""
        statuses = self.statuses()
        return [r for r in self.records() if statuses.get(r.hash, "active") == "active"]

    def retire(self, prefix: str, reason: str) -> StatusChange:
        """Take an active batch out of future snapshots (reversible with restore)."""
        record = self.resolve(prefix)
        status = self.statuses().get(record.hash, "active")
        if status != "active":
            raise StoreError(f"batch {record.hash[:12]} is {status} already: nothing to retire")
        return self.set_status(record.hash, "retired", reason)

    def restore(self, prefix: str, reason: str) -> StatusChange:
        """Put a retired batch back into future snapshots, unless another active batch holds
        the same file's rows (both would be trained on)."""
        record = self.resolve(prefix)
        status = self.statuses().get(record.hash, "active")
        if status != "retired":
            raise StoreError(
                f"batch {record.hash[:12]} is {status}, not retired: nothing to restore"
            )
        twins = [
            r.hash[:12]
            for r in self.active()
            if r.source_sha256 == record.source_sha256 and r.hash != record.hash
        ]
        if twins:
            raise StoreError(
                f"batch {', '.join(twins)} holds the same file's rows and is active: "
                f"retire it first (`assay batches retire {twins[0]} --reason ...`)"
            )
        return self.set_status(record.hash, "active", reason)

    def resolve(self, prefix: str) -> BatchRecord:
        """The one batch whose hash starts with `prefix` (as `assay batches` prints it)."""
        found = [r for r in self.records() if r.hash.startswith(prefix.lower())] if prefix else []
        if len(found) != 1:
            what = "no batch" if not found else f"{len(found)} batches"
            raise StoreError(f"{what} in {self.root} start with {prefix!r}: see `assay batches`")
        return found[0]

    def get_record(self, digest: str) -> BatchRecord | None:
        path = self._record(digest)
        if not path.is_file() or not self._data(digest).is_file():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        return BatchRecord(**{**raw, "warnings": tuple(raw.get("warnings", ()))})

    def records(self) -> list[BatchRecord]:
        """Committed batches, ordered by hash so a snapshot lists them the same way each time."""
        if not self.root.is_dir():
            return []
        digests = sorted(p.stem for p in self.root.glob("*.json") if not p.name.startswith("."))
        return [r for d in digests if (r := self.get_record(d)) is not None]

    def load(self, digest: str) -> pd.DataFrame:
        return pd.read_parquet(self._data(digest))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Quarantine:
    """Rejected files, each in its own folder: the original bytes, report.json, reason.txt."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, source: Path, *, reason: str, report: dict[str, Any], move: bool) -> Path:
        """Keep the file with its reason. The folder appears whole (built under a temp name,
        then renamed); with move=True the original is removed only after that rename."""
        self.root.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.root)
        digest = file_digest(source)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = _UNSAFE.sub("_", source.name).lstrip(".") or "file"
        staging = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.root))
        try:
            copy_atomic(source, staging / name)
            (staging / "reason.txt").write_text(reason.strip() + "\n", encoding="utf-8")
            write_json_atomic(
                staging / "report.json",
                {
                    "source": str(source),
                    "source_sha256": digest,
                    "reason": reason,
                    "quarantined_at": _now(),
                    **report,
                },
            )
            final = self.root / f"{stamp}-{digest[:12]}-{name}"
            os.rename(staging, final)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        if move:
            source.unlink()
        return final

    def entries(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
