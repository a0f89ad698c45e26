"""Monitor flow: are the rows that arrived since the last training, and the rows the champion
served, still like the ones the model was judged on, and, where they have labels, is the
champion still as accurate and as fair?"""

from __future__ import annotations

import pandas as pd
from prefect import flow

from assay.config import Spec
from assay.home import Home
from assay.monitoring.check import Reference, RowsCheck
from flows.dataset import open_dataset
from tasks import monitor as m


@flow(name="monitor", log_prints=True)
def monitor(spec_path: str, home: str | None = None) -> str:
    """Check every batch accepted since the last training, and what the champion served;
    alert on drift."""
    spec, where = open_dataset(spec_path, home)

    # Production traffic: what the served model saw (served rows are not batches)
    ref = m.reference(where, spec)
    served = m.check_traffic(where, spec, ref) if ref is not None else None
    if served is not None:
        print(f"served traffic: {served.reason}")

    # Extract: the rows since the last training (scored batches among them)
    records = m.since_training(where)
    if not records:
        print("nothing accepted since the last training: nothing to check")
        return "no new batches"
    frame = m.rows_of(where, [r.hash for r in records])

    # Transform + Load: check, record, alert
    scope = f"{len(records)} batch(es) since the last training"
    found = check_and_alert(where, spec, frame, scope, ref)
    return found.reason if found else "no model trained yet: nothing to compare with"


def check_and_alert(
    where: Home, spec: Spec, frame: pd.DataFrame, scope: str, ref: Reference | None
) -> RowsCheck | None:
    """The check the monitor and ingest flows share: against `ref` (the champion, or the last
    candidate; m.reference finds it), logged to MLflow, and `assay.drift.detected` when it
    finds drift."""
    if ref is None:
        print("no model trained yet: drift is checked from the first training on")
        return None
    found = m.check(frame, spec, ref, scope)
    print(found.reason)
    m.log_check(where, spec, found, scope)
    if found.detected:
        m.alert(spec, found, scope)
    return found
