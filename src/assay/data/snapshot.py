"""A training snapshot: the accepted batches a run trains on, named by one fingerprint."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from assay.config import Spec
from assay.data.fingerprint import snapshot_fingerprint
from assay.data.store import BatchRecord, BatchStore
from assay.errors import GateFailed


@dataclass(frozen=True)
class Snapshot:
    """Which batches, and the fingerprint every downstream result is keyed by."""

    fingerprint: str
    batches: tuple[BatchRecord, ...]
    sites: tuple[str, ...] = ()  # federated: each site's own snapshot fingerprint

    @property
    def rows(self) -> int:
        return sum(b.rows for b in self.batches)

    def with_sites(self, fingerprints: list[str]) -> Snapshot:
        """The snapshot of a federated run: what it trains on includes every site's data, so
        a new batch at any site gives a new fingerprint and new stage keys."""
        sites = tuple(fingerprints)
        return Snapshot(snapshot_fingerprint(sites, self.fingerprint), self.batches, sites)


def take_snapshot(store: BatchStore, spec: Spec) -> Snapshot:
    """The active batches now in the store (superseded and retired ones left out); an empty
    store is an error the user can fix."""
    batches = tuple(store.active())
    if not batches:
        raise GateFailed(
            f"no accepted batches in {store.root}: run `assay ingest FILE` or `assay run` first"
        )
    return Snapshot(snapshot_fingerprint([b.hash for b in batches], spec.digest()), batches)


def load_batches(store: BatchStore, snapshot: Snapshot) -> list[tuple[BatchRecord, pd.DataFrame]]:
    return [(record, store.load(record.hash)) for record in snapshot.batches]


def stage_key(snapshot: Snapshot, spec: Spec, *sections: str) -> str:
    """Cache key of a stage: the snapshot's batches plus only the spec sections it reads."""
    hashes = [b.hash for b in snapshot.batches] + list(snapshot.sites)
    return snapshot_fingerprint(hashes, spec.stage_digest(*sections))
