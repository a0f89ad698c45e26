"""The main job behind `assay run`: ingest the spec's bundled files, then train, on one
reading of the spec."""

from __future__ import annotations

from prefect import flow

from assay.config import Spec
from assay.training import TrainResult
from flows.dataset import open_dataset
from flows.ingest import ingest_bundled
from flows.train import train


@flow(name="run", log_prints=True)
def run(
    spec_path: str, home: str | None = None, profile: str | None = None, spec: Spec | None = None
) -> TrainResult:
    """Ingest and train read the spec this run read (or its caller did, `spec`). Bundled
    files already in the store are recognised by content and stored once. The ingest
    deployment's follow-ups (drift, the retraining policy, unlabelled batches announced for
    scoring) are left out: this run trains next anyway, and scoring uses its champion."""
    spec, _ = open_dataset(spec if spec is not None else spec_path, home, profile)
    if spec.bundled:
        ingest_bundled(spec, home)
    return train(spec_path, home, profile, spec=spec)
