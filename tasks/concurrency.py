"""Trainings at once: one per dataset, and a cap over all datasets together. Every train flow run
holds a slot of both global concurrency limits, whether a schedule, an event or a person started
it: `assay-train-<dataset>` (1 slot) and `assay-train` (`assay serve --max-trainings`). Both are
taken in one request, so two datasets waiting for each other's slot cannot deadlock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

TRAINING_LIMIT = "assay-train"  # every dataset's trainings together


def dataset_limit(dataset: str) -> str:
    return f"{TRAINING_LIMIT}-{dataset}"


def default_max_trainings() -> int:
    """A training uses every core it is given: one at a time per 4 cores (1 on 2 cores)."""
    return max(1, (os.cpu_count() or 1) // 4)


def ensure_limit(name: str, slots: int, *, update: bool = False) -> None:
    """Create the limit with `slots` unless it exists; with `update`, set an existing one to
    `slots` too (`assay serve --max-trainings`). Looked up first: creating one that exists
    makes the server log a UNIQUE-constraint error on every run. Two processes racing past the
    lookup still get ObjectAlreadyExists."""
    with get_client(sync_client=True) as client:
        try:
            found = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=slots)
                )
            return
        if update and found.limit != slots:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=slots))


def ensure_training_limits(datasets: list[str], max_trainings: int | None = None) -> None:
    """The limits `assay serve` and each train run need. The cap is set only when asked for:
    a train run, or a second `assay serve` without the option, leaves the operator's cap."""
    for dataset in datasets:
        ensure_limit(dataset_limit(dataset), 1)
    ensure_limit(
        TRAINING_LIMIT,
        max_trainings or default_max_trainings(),
        update=max_trainings is not None,
    )


@contextmanager
def training_slot(dataset: str) -> Iterator[None]:
    """Wait for a slot of both limits, hold them for the block, give them back even on
    failure. A lease renewal that fails (the server busy under load) is logged, not raised:
    with `strict` alone Prefect would kill an hours-long training for one missed renewal."""
    ensure_training_limits([dataset])
    names = [dataset_limit(dataset), TRAINING_LIMIT]
    print(f"waiting for a training slot ({' and '.join(names)})")
    with concurrency(names, occupy=1, strict=True, raise_on_lease_renewal_failure=False):
        print("training slot held")
        yield
