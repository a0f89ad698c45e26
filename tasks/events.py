"""The events assay emits about data (the model events live beside registration, in
tasks/registry.py). Deployments in deployments/prefect.yaml are triggered by them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.events import emit_event

DATA_ARRIVED = "assay.data.arrived"  # a complete file landed: starts `ingest`
RETRAIN_REQUESTED = "assay.retrain.requested"  # enough new rows, or drift: starts `train`
DRIFT_DETECTED = "assay.drift.detected"  # a batch (or the window since training) drifted


def data_arrived(path: Path) -> None:
    """One event per landed file; the deployment's trigger passes `paths` to the ingest flow."""
    emit_event(
        event=DATA_ARRIVED,
        resource={"prefect.resource.id": f"assay.file.{path.name}", "assay.path": str(path)},
        payload={"paths": [str(path)]},
    )


def about_dataset(event: str, dataset: str, payload: dict[str, Any]) -> None:
    """Retrain requests and drift alarms are about a dataset (the spec's name)."""
    emit_event(
        event=event, resource={"prefect.resource.id": f"assay.dataset.{dataset}"}, payload=payload
    )
