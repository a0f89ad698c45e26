"""Four datasets shaped like public ones that are not Adult (issue 16), each as a user runs it:
draft the suite from the dataset's own file, ingest, train. The suite must accept the file it
was drafted from, every gate must pass, and what the spec left out (filtered rows, labels of
other classes, broken lines) must be counted and kept."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from assay.config import load_spec
from assay.data.reader import read_table
from assay.data.store import BatchStore
from assay.home import Home
from assay.ingest import IngestOutcome
from assay.validation.suggest import suggest
from assay.validation.suite import save_suite
from flows.ingest import ingest
from flows.train import train
from tests.shapes import census_1k, imbalanced_jsonl, loans_repeated_header, tickets_text

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

GATES = ("Leakage guard", "Quality gate", "Compression gate", "Fairness gate", "Decision check")


def suggest_ingest_run(
    spec: Path, reference: Path, files: list[Path], home: Path, profile: str | None = None
) -> tuple[list[IngestOutcome], str]:
    """Draft the suite from the reference file, ingest, train; returns the ingest outcomes and
    the run summary. Every file must be accepted (the suite takes its own reference) and every
    gate must pass."""
    loaded = load_spec(spec)
    save_suite(suggest(read_table(reference, loaded), loaded), loaded.expectations)
    outcomes = ingest([str(f) for f in files], str(spec), str(home))
    assert [o.status for o in outcomes] == ["accepted"] * len(files), outcomes
    out = train(str(spec), str(home), profile).summary()
    for gate in GATES:
        assert re.search(rf"- {gate}: passed", out), (gate, out)
    return outcomes, out


def metric(out: str, model: str) -> float:
    """ROC AUC of a model (a pattern for its row's name) from the run summary's table."""
    return float(re.search(rf"\| {model} \| [0-9.]+ \| ([0-9.]+) ", out).group(1))


def batch_frames(spec_path: Path, home: Path) -> pd.DataFrame:
    spec = load_spec(spec_path)
    store = BatchStore(Home(home).for_dataset(spec.name).batches)
    return pd.concat([store.load(r.hash) for r in store.active()], ignore_index=True)


def test_headerless_coded_1k_rows_pass_every_gate(tmp_path):
    spec = census_1k(tmp_path / "data")
    people = tmp_path / "data" / "people.txt"
    _, out = suggest_ingest_run(spec, people, [people], tmp_path / "home")
    assert "(full profile)" in out
    assert "equalized_odds (age_band)" in out  # assessed on the banded, fairness-only age
    frame = batch_frames(spec, tmp_path / "home")
    assert set(frame["edu"]) == {"primary", "secondary", "college", "bachelor", "master"}
    assert set(frame["job"]) == {"clerk", "engineer", "sales", "labour"}
    assert set(frame["age_band"]) == {"<35", "35-55", "55+"} and "age" not in frame.columns
    assert "age_band" not in load_spec(spec).feature_columns


def test_repeated_header_rename_filter_and_derived_column(tmp_path):
    spec = loans_repeated_header(tmp_path / "data")
    files = [tmp_path / "data" / "loans.csv", tmp_path / "data" / "loans-test.csv"]
    ingested, _ = suggest_ingest_run(spec, files[0], files, tmp_path / "home", "quick")
    left_out = [o.filtered for o in ingested]
    raw = pd.concat([pd.read_csv(f) for f in files])  # pandas names the copy Amount.1
    kept = raw[raw["Term"].isin([36, 60]) & (raw["Purpose"] != "other")
               & (raw["Status"] != "Current")]  # fmt: skip
    assert sum(left_out) == len(raw) - len(kept) > 0
    frame = batch_frames(spec, tmp_path / "home")
    assert len(frame) == len(kept) and "approved_share" in frame.columns
    assert sorted(frame["approved"]) == sorted(kept["Amount.1"].astype(float))


def test_text_task_with_datetime_label_values_and_broken_lines(tmp_path):
    spec = tickets_text(tmp_path / "data")
    tickets = tmp_path / "data" / "tickets.csv"
    original = tickets.read_bytes()
    [ingested], out = suggest_ingest_run(spec, tickets, [tickets], tmp_path / "home", "quick")
    assert ingested.dropped_labels > 1000 and "whose label is neither class" in ingested.reason
    assert ingested.skipped_lines == 8  # four rows, each broken in two
    folder = Path(ingested.skipped_dir)
    skipped = folder / "tickets.csv.skipped-lines"
    report = json.loads((folder / "report.json").read_text())
    lines = original.splitlines(keepends=True)
    assert skipped.read_bytes() == b"".join(lines[n - 1] for n in report["lines"])
    assert (folder / "reason.txt").read_text().startswith("8 malformed record(s) skipped")
    frame = batch_frames(spec, tmp_path / "home")
    assert set(frame["queue"]) == {"billing", "tech"}
    assert frame["opened_at_hour"].between(0, 23).all()
    assert metric(out, r"reference \(\w+\)") > 0.7  # the reference reads the subject words


def test_imbalanced_rows_with_a_sensitive_attribute_the_model_never_sees(tmp_path):
    spec = imbalanced_jsonl(tmp_path / "data")
    events = tmp_path / "data" / "events.jsonl"
    _, out = suggest_ingest_run(spec, events, [events], tmp_path / "home", "quick")
    assert "Fairness gate: passed (1 checks)" in out
    assert "equalized_odds (gender)" in out
    assert "gender" not in load_spec(spec).feature_columns
    frame = batch_frames(spec, tmp_path / "home")
    assert set(frame["gender"]) == {"f", "m", "other"}
    assert 0.07 < (frame["upgraded"] == "yes").mean() < 0.13
