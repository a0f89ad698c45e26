"""The main job behind `assay run`: ingest the spec's bundled files, then train."""

from __future__ import annotations

from prefect import flow

from assay.training import TrainResult
from flows.dataset import open_dataset
from flows.ingest import ingest
from flows.train import train


@flow(name="run", log_prints=True)
def run(spec_path: str, home: str | None = None, profile: str | None = None) -> TrainResult:
    """Bundled files already in the store are recognised by content and stored once."""
    spec, _ = open_dataset(spec_path, home)
    bundled = [str(p) for p in spec.bundled]
    if bundled:
        ingest(bundled, spec_path, home)
    return train(spec_path, home, profile)
