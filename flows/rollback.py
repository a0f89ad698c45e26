"""Rollback flow: move `champion` back (to a given version, or to the one before), record why."""

from __future__ import annotations

from prefect import flow

from assay.config import load_spec
from assay.home import Home
from tasks import registry as r


@flow(name="rollback", log_prints=True)
def rollback(
    reason: str,
    to: str | None = None,
    spec_path: str = "configs/adult.yaml",
    home: str | None = None,
) -> str:
    """Champion back to `to` (or the previous champion); audited and emitted as an event."""
    spec = load_spec(spec_path)
    version = r.roll_back(Home.from_env(home).for_dataset(spec.name), spec, reason, to)
    print(f"{spec.registered_name}: champion is now version {version}")
    return version
