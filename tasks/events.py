"""The events assay emits about data (the model events live beside registration, in
tasks/registry.py). Deployments in deployments/prefect.yaml are triggered by them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.events import emit_event

DATA_ARRIVED = "assay.data.arrived"  # a complete file landed: starts `ingest`
RETRAIN_REQUESTED = "assay.retrain.requested"  # enough new rows, or drift: starts `train`
DRIFT_DETECTED = "assay.drift.detected"  # a batch (or the window since training) drifted
UNLABELLED_ACCEPTED = "assay.data.unlabelled"  # batches without labels accepted: starts `score`


def data_arrived(paths: list[Path]) -> None:
    """One event per poll of the landing folder, naming every file that became ready: under
    load, 200 files in a minute make a few dozen ingest runs, not 200 (each run is a process
    with seconds of imports). The deployment's trigger passes `paths` to the ingest flow."""
    first = paths[0].name + (f"+{len(paths) - 1}" if len(paths) > 1 else "")
    emit_event(
        event=DATA_ARRIVED,
        resource={"prefect.resource.id": f"assay.file.{first}", "assay.files": str(len(paths))},
        payload={"paths": [str(p) for p in paths]},
    )


def about_dataset(event: str, dataset: str, payload: dict[str, Any]) -> None:
    """Retrain requests, drift alarms and unlabelled batches are about a dataset (the spec's
    name)."""
    emit_event(
        event=event, resource={"prefect.resource.id": f"assay.dataset.{dataset}"}, payload=payload
    )
