"""Rollback flow: move `champion` back (to a given version, or to the one before), record why."""

from __future__ import annotations

from prefect import flow

from flows.dataset import open_dataset
from tasks import registry as r


@flow(name="rollback", log_prints=True)
def rollback(
    reason: str,
    to: str | None = None,
    spec_path: str = "configs/adult.yaml",
    home: str | None = None,
) -> str:
    """Champion back to `to` (or the previous champion); audited and emitted as an event."""
    spec, where = open_dataset(spec_path, home)
    version = r.roll_back(where, spec, reason, to)
    print(f"{spec.registered_name}: champion is now version {version}")
    return version
