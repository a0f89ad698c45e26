"""The accepted-batch store and the quarantine: the only places assay writes data.

Accepted batches are append-only Parquet files named by content hash, each with a JSON record
written last (the record's presence is the commit). Quarantined files are kept byte for byte,
beside a report and a one-line reason. Nothing here is ever rewritten or deleted.
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
from typing import Any

import pandas as pd

from assay.data.atomic import (
    TEMP_PREFIX,
    copy_atomic,
    remove_stale_temps,
    write_atomic,
    write_json_atomic,
)
from assay.data.fingerprint import file_digest, frame_digest


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

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "warnings": list(self.warnings)}


class BatchStore:
    """Append-only store of accepted batches under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _data(self, digest: str) -> Path:
        return self.root / f"{digest}.parquet"

    def _record(self, digest: str) -> Path:
        return self.root / f"{digest}.json"

    def put(
        self, frame: pd.DataFrame, *, source: Path, labelled: bool, warnings: list[str]
    ) -> tuple[BatchRecord, bool]:
        """Store a batch unless the same content is already there; returns (record, created)."""
        digest = frame_digest(frame)
        existing = self.get_record(digest)
        if existing is not None:
            return existing, False
        remove_stale_temps(self.root)
        write_atomic(self._data(digest), lambda p: frame.to_parquet(p, index=False))
        record = BatchRecord(
            hash=digest,
            source=source.name,
            source_sha256=file_digest(source),
            rows=len(frame),
            labelled=labelled,
            accepted_at=_now(),
            warnings=tuple(warnings),
        )
        write_json_atomic(self._record(digest), record.to_dict())
        return record, True

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
