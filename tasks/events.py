"""The events assay emits about data (the model events live beside registration, in
tasks/registry.py). Deployments in deployments/prefect.yaml are triggered by them.

Every event is about one dataset: its resource is `assay.dataset.<spec name>` (model events name
the dataset as a related resource), and each deployment's trigger matches its own dataset's id
exactly, so one dataset's files, retrain requests and batches never start another's flows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.events import emit_event

DATA_ARRIVED = "assay.data.arrived"  # a complete file landed: starts `ingest`
RETRAIN_REQUESTED = "assay.retrain.requested"  # enough new rows, or drift: starts `train`
DRIFT_DETECTED = "assay.drift.detected"  # a batch (or the window since training) drifted
UNLABELLED_ACCEPTED = "assay.data.unlabelled"  # batches without labels accepted: starts `score`


def dataset_resource(dataset: str) -> str:
    return f"assay.dataset.{dataset}"


def data_arrived(dataset: str, paths: list[Path]) -> None:
    """One event per poll of a dataset's landing folder, naming every file that became ready:
    under load, 200 files in a minute make a few dozen ingest runs, not 200 (each run is a
    process with seconds of imports). The deployment's trigger passes `paths` to the ingest
    flow."""
    first = paths[0].name + (f"+{len(paths) - 1}" if len(paths) > 1 else "")
    emit_event(
        event=DATA_ARRIVED,
        resource={
            "prefect.resource.id": dataset_resource(dataset),
            "assay.files": str(len(paths)),
            "assay.first-file": first,
        },
        payload={"paths": [str(p) for p in paths]},
    )


def about_dataset(event: str, dataset: str, payload: dict[str, Any]) -> None:
    """Retrain requests, drift alarms and unlabelled batches are about a dataset (the spec's
    name)."""
    emit_event(
        event=event, resource={"prefect.resource.id": dataset_resource(dataset)}, payload=payload
    )
