"""The audit log: promotions, rollbacks, quarantines, gate failures and batch status changes,
one JSON line each, appended and never rewritten. Each dataset has its own
(ASSAY_HOME/datasets/<name>/store/audit.jsonl); the registry mirrors each model entry as a tag
on the version it concerns.

An entry is written with a single O_APPEND write and fsync'd, so a crash leaves either the
whole line or none of it; a torn last line (a crash mid-write on a filesystem that allows it)
is skipped on reading, never repaired in place."""

from __future__ import annotations

import getpass
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from assay.data.atomic import append_json_line, read_json_lines

ACTIONS = (
    "promoted",
    "not-promoted",
    "rolled-back",
    "quarantined",
    "rejected",
    "gate-failed",
    "batch-superseded",
    "batch-retired",
    "batch-restored",
)


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
        append_json_line(self.path, asdict(stamped))
        return stamped

    def entries(self) -> list[AuditEntry]:
        """Every complete entry, oldest first."""
        out = []
        for raw in read_json_lines(self.path):
            try:
                out.append(AuditEntry(**raw))
            except TypeError:
                continue
        return out
