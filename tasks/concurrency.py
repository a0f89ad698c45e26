"""One training at a time: every train flow run holds a slot of one global concurrency limit,
whether a schedule, an event or a person started it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

TRAINING_LIMIT = "assay-train"


def ensure_training_limit() -> None:
    """Create the limit (1 slot) unless it exists; `assay serve` and each train run call it.
    Looked up first: creating one that exists makes the server log a UNIQUE-constraint error
    on every run. Two processes racing past the lookup still get ObjectAlreadyExists."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(TRAINING_LIMIT)
            return
        except ObjectNotFound:
            pass
        with suppress(ObjectAlreadyExists):
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=TRAINING_LIMIT, limit=1)
            )


@contextmanager
def training_slot() -> Iterator[None]:
    """Wait for the one training slot, hold it for the block, give it back even on failure."""
    ensure_training_limit()
    with concurrency(TRAINING_LIMIT, occupy=1, strict=True):
        yield
