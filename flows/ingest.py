"""Ingest flow: each file is parsed, validated, then accepted or quarantined with its reason."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from assay.config import load_spec
from assay.data.fingerprint import file_digest
from assay.home import Home
from assay.ingest import IngestOutcome
from assay.validation.suite import load_suite
from tasks.ingest import accept_batch, parse_file, publish_summary, quarantine_file, validate_batch


@flow(name="ingest", log_prints=True)
def ingest(paths: list[str], spec_path: str, home: str | None = None) -> list[IngestOutcome]:
    """Ingest files in order; one bad file never stops the others."""
    spec = load_spec(spec_path)
    suite = load_suite(spec.expectations)
    where = Home.from_env(home)
    outcomes = []
    for raw in paths:
        path = Path(raw).resolve()
        # Extract
        parsed = parse_file(path, spec)
        if parsed.frame is None:
            outcome = quarantine_file(path, parsed.error, where, stage="read")
        else:
            # Validate
            stem = f"{path.name}-{file_digest(path)[:12]}"
            report, page = validate_batch(
                parsed.frame, suite, where, stem, f"{spec.name}: {path.name}"
            )
            # Load
            if report.passed:
                outcome = accept_batch(path, parsed.frame, report, spec, where, page)
            else:
                outcome = quarantine_file(path, report.reason, where, "validation", report, page)
        print(f"{outcome.status:>11}  {path.name}: {outcome.reason}")
        outcomes.append(outcome)
    publish_summary(outcomes)
    return outcomes
