"""A training holds its slot through a busy server: a lease renewal that keeps failing is
logged and the training goes on (Prefect's `strict` alone would cancel it mid-training)."""

from __future__ import annotations

import time

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client

from tasks.concurrency import dataset_limit, training_slot


def test_a_failed_lease_renewal_does_not_stop_a_training(prefect_api, monkeypatch):
    refused = []

    def busy(self, lease_id, lease_duration):  # the injected fault: every renewal fails
        refused.append(lease_id)
        raise httpx.ConnectError("server busy")

    monkeypatch.setattr(SyncPrefectClient, "renew_concurrency_lease", busy)
    with training_slot("renewals"):
        deadline = time.monotonic() + 30
        while len(refused) < 3 and time.monotonic() < deadline:  # Prefect tries three times
            time.sleep(0.2)
        time.sleep(1)  # past the failure's handling: a cancelled block ends here
        finished = True
    assert len(refused) == 3 and finished
    with get_client(sync_client=True) as client:
        assert (
            client.read_global_concurrency_limit_by_name(dataset_limit("renewals")).active_slots
            == 0
        )
