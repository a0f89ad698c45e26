"""What is new since the last training, and whether that asks for a retrain.

The train flow records which batches it trained on; every accepted batch not in that record is
new. The retraining policy in the spec turns "how many new rows" and "did they drift" into a
reason to retrain, or none.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from assay.config import Spec
from assay.data.atomic import write_json_atomic
from assay.data.store import BatchRecord, BatchStore


@dataclass(frozen=True)
class LastTraining:
    """The snapshot the latest train run used (whatever its gates decided)."""

    fingerprint: str
    batches: tuple[str, ...]
    rows: int
    package: str  # the candidate's deployable package (its reference profile is inside)

    def save(self, path: Path) -> Path:
        return write_json_atomic(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> LastTraining | None:
        """None before the first training."""
        if not path.is_file():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(raw["fingerprint"], tuple(raw["batches"]), raw["rows"], raw["package"])


def new_batches(store: BatchStore, last: LastTraining | None) -> list[BatchRecord]:
    """Accepted batches the last training did not see (all of them before any training)."""
    seen = set(last.batches) if last else set()
    return [record for record in store.active() if record.hash not in seen]


def retrain_reason(new_rows: int, drifted: bool, spec: Spec) -> str | None:
    """Why to retrain now, or None: enough new rows, or drift when the policy counts it."""
    policy = spec.monitoring
    if new_rows >= policy.retrain_rows:
        enough = f"at least {policy.retrain_rows:,}"
        return f"{new_rows:,} rows accepted since the last training ({enough})"
    if drifted and policy.retrain_on_drift:
        return f"drift in a new batch ({new_rows:,} rows since the last training)"
    return None
