"""The audit log: promotions, rollbacks, quarantines and gate failures, one JSON line each,
appended and never rewritten. It lives in the store (ASSAY_HOME/store/audit.jsonl); the registry
mirrors each model entry as a tag on the version it concerns.

An entry is written with a single O_APPEND write and fsync'd, so a crash leaves either the
whole line or none of it; a torn last line (a crash mid-write on a filesystem that allows it)
is skipped on reading, never repaired in place."""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ACTIONS = ("promoted", "not-promoted", "rolled-back", "quarantined", "rejected", "gate-failed")


@dataclass(frozen=True)
class AuditEntry:
    action: str
    reason: str
    model: str = ""
    version: str = ""
    evidence: dict = field(default_factory=dict)
    actor: str = ""
    time: str = ""


def actor() -> str:
    """Who acts: ASSAY_ACTOR (set by deployments and CI) or the login name."""
    return os.environ.get("ASSAY_ACTOR") or getpass.getuser()


@dataclass(frozen=True)
class AuditLog:
    path: Path

    def append(self, entry: AuditEntry) -> AuditEntry:
        """Stamp time and actor (unless given) and append the entry durably."""
        if entry.action not in ACTIONS:
            raise ValueError(f"unknown audit action {entry.action!r} (known: {', '.join(ACTIONS)})")
        stamped = AuditEntry(
            **{
                **asdict(entry),
                "actor": entry.actor or actor(),
                "time": entry.time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
        line = (json.dumps(asdict(stamped), sort_keys=True) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._torn():
            line = b"\n" + line  # end the torn line (skipped on reading); never rewrite it
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return stamped

    def _torn(self) -> bool:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return False
        with self.path.open("rb") as stream:
            stream.seek(-1, os.SEEK_END)
            return stream.read(1) != b"\n"

    def entries(self) -> list[AuditEntry]:
        """Every complete entry, oldest first."""
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(AuditEntry(**json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                continue  # a torn last line from a crash mid-write
        return out
