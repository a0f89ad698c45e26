"""Ingest flow: each path is checked, each file parsed, validated, then accepted or quarantined
with its reason; what was accepted is checked for drift, the retraining policy decides
whether to ask for a new training (`assay.retrain.requested`), and batches without labels are
announced for scoring (`assay.data.unlabelled`). `assay run` ingests its bundled files without
those follow-ups (`ingest_bundled`): it trains next."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.runtime import deployment

from assay.config import Spec
from assay.data.fingerprint import file_digest
from assay.data.paths import CheckedPath, as_changed, check_path, unchanged
from assay.data.reader import one_line
from assay.home import Home
from assay.ingest import IngestOutcome, not_found
from assay.validation.report import ReportName
from assay.validation.suite import gx, load_suite
from flows.dataset import open_dataset
from flows.monitor import check_and_alert
from tasks.ingest import (
    accept_batch,
    parse_file,
    publish_summary,
    quarantine_file,
    record_outcome,
    reject_path,
    validate_batch,
)
from tasks.monitor import reference, request_retrain, rows_of
from tasks.score import announce_unlabelled


@flow(name="ingest", log_prints=True)
def ingest(
    paths: list[str], spec_path: str, home: str | None = None, confine: bool | None = None
) -> list[IngestOutcome]:
    """Ingest files in order, then follow up on what was accepted.

    `confine`: only regular files in the landing folder may be opened (assay.data.paths).
    Left unset it is on for a deployment run, whose paths come from an event payload or the
    UI, and off for a direct call (`assay ingest FILE`), whose caller named them.
    """
    spec, where = open_dataset(spec_path, home)
    outcomes = settle_all(paths, spec, where, from_deployment() if confine is None else confine)
    follow_up(outcomes, spec, where)
    return outcomes


@flow(name="ingest", log_prints=True)
def ingest_bundled(spec: Spec, home: str | None = None) -> list[IngestOutcome]:
    """`assay run`'s ingest (the same flow in the UI): the files the spec bundles, under the
    spec the run read, with no follow-ups (the run trains next, and its champion is what
    scores)."""
    spec, where = open_dataset(spec, home)
    return settle_all([str(p) for p in spec.bundled], spec, where, confined=False)


def settle_all(paths: list[str], spec: Spec, where: Home, confined: bool) -> list[IngestOutcome]:
    """Each path settled in order (one bad file never stops the others), then the summary."""
    suite = load_suite(spec.expectations)
    outcomes = []
    for raw in paths:
        checked = check_path(str(raw), where.landing, confine=confined)
        outcome = settle(checked, spec, suite, where)
        print(f"{outcome.status:>11}  {one_line(str(raw), 120)}: {outcome.reason}")
        if outcome.status in ("quarantined", "rejected") or outcome.superseded:
            record_outcome(where, outcome)
        outcomes.append(outcome)
    publish_summary(outcomes)
    return outcomes


def follow_up(outcomes: list[IngestOutcome], spec: Spec, where: Home) -> None:
    """Does what was accepted drift, does it call for a retrain, does it need scoring?"""
    accepted = [o for o in outcomes if o.status == "accepted" and o.batch]
    if accepted:
        frame = rows_of(where, [o.batch for o in accepted])
        names = ", ".join(Path(o.path).name for o in accepted)
        scope = f"just accepted: {names}"
        found = check_and_alert(where, spec, frame, scope, reference(where, spec))
        request_retrain(where, spec, bool(found and found.detected))
        announce_unlabelled(where, spec, [str(o.batch) for o in accepted])


def from_deployment() -> bool:
    """Whether this run was started from a deployment (an event trigger, the UI, a schedule)."""
    return deployment.id is not None


def settle(
    checked: CheckedPath, spec: Spec, suite: gx.ExpectationSuite, home: Home
) -> IngestOutcome:
    """One path: check, parse, validate, store; reject or quarantine at the first step that
    refuses it. Before anything is copied or moved, the file must still be the one checked."""
    if checked.verdict == "missing":
        return not_found(checked.path)
    if checked.verdict == "rejected":
        return reject_path(checked, home)
    path = checked.path
    # Extract
    parsed = parse_file(checked, spec)
    if parsed.changed or not unchanged(checked):
        return reject_path(as_changed(checked), home)
    if parsed.frame is None:
        return quarantine_file(path, parsed.error, home, stage="read")
    # Validate
    stem = f"{path.name}-{file_digest(path)[:12]}"
    optional = (spec.label.column,) if spec.label.allow_unlabelled_batches else ()
    title = f"{spec.name}: {path.name}"
    validation = validate_batch(parsed.frame, suite, home, ReportName(stem, title), optional)
    if not unchanged(checked):
        return reject_path(as_changed(checked), home)
    # Load
    report = validation.report
    if not report.passed:
        return quarantine_file(path, report.reason, home, stage="validation", validation=validation)
    return accept_batch(path, parsed, validation, spec, home)
