"""Ingest flow: each file is parsed, validated, then accepted or quarantined with its reason;
what was accepted is checked for drift, and the retraining policy decides whether to ask for a
new training (`assay.retrain.requested`)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from assay.config import Spec, load_spec
from assay.data.fingerprint import file_digest
from assay.home import Home
from assay.ingest import IngestOutcome, not_found
from assay.validation.suite import gx, load_suite
from flows.monitor import check_and_alert
from tasks.ingest import (
    accept_batch,
    parse_file,
    publish_summary,
    quarantine_file,
    record_quarantine,
    validate_batch,
)
from tasks.monitor import request_retrain, rows_of


@flow(name="ingest", log_prints=True)
def ingest(paths: list[str], spec_path: str, home: str | None = None) -> list[IngestOutcome]:
    """Ingest files in order; one bad file never stops the others."""
    spec = load_spec(spec_path)
    suite = load_suite(spec.expectations)
    where = Home.from_env(home)
    outcomes = []
    for raw in paths:
        outcome = settle(Path(raw).resolve(), spec, suite, where)
        print(f"{outcome.status:>11}  {Path(raw).name}: {outcome.reason}")
        if outcome.status == "quarantined":
            record_quarantine(where, outcome)
        outcomes.append(outcome)
    publish_summary(outcomes)

    # Follow up: does what was accepted drift, and does it call for a retrain?
    accepted = [o for o in outcomes if o.status == "accepted" and o.batch]
    if accepted:
        frame = rows_of(where, [o.batch for o in accepted])
        names = ", ".join(Path(o.path).name for o in accepted)
        found = check_and_alert(where, spec, frame, f"just accepted: {names}")
        request_retrain(where, spec, bool(found and found.detected))
    return outcomes


def settle(path: Path, spec: Spec, suite: gx.ExpectationSuite, home: Home) -> IngestOutcome:
    """One file: parse, validate, store; quarantine at the first step that rejects it."""
    # Extract
    if not path.is_file():
        return not_found(path)
    parsed = parse_file(path, spec)
    if parsed.frame is None:
        return quarantine_file(path, parsed.error, home, stage="read")
    # Validate
    stem = f"{path.name}-{file_digest(path)[:12]}"
    report, page = validate_batch(parsed.frame, suite, home, stem, f"{spec.name}: {path.name}")
    # Load
    if not report.passed:
        return quarantine_file(
            path, report.reason, home, stage="validation", report=report, report_path=page
        )
    return accept_batch(path, parsed.frame, report, spec, home, page)
