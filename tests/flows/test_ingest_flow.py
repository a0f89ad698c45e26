"""Ingest through Prefect: every bad input ends in quarantine with its reason, bytes intact."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from assay.data.fingerprint import file_digest
from assay.data.reader import read_table
from assay.data.store import BatchStore
from assay.registry.audit import AuditLog
from flows.ingest import ingest
from tests.conftest import ADULT_SPEC
from tests.flows.helpers import adult_variant, artifacts, task_runs, wait_for_events

pytestmark = pytest.mark.usefixtures("prefect_api")


def _run(paths, home):
    return ingest([str(p) for p in paths], str(ADULT_SPEC), str(home.root))


def _fields(line: str) -> list[str]:
    return [f.strip() for f in line.split(",")]


def _lines(rows: list[list[str]]) -> str:
    return "\n".join(", ".join(r) for r in rows) + "\n"


def _with(adult_lines, column: int, value: str, every: int) -> str:
    rows = [_fields(line) for line in adult_lines]
    for i in range(0, len(rows), every):
        rows[i][column] = value
    return _lines(rows)


def _parquet_without(tmp_path, adult_spec, adult_lines, column: str):
    good = tmp_path / "good.csv"
    good.write_text("\n".join(adult_lines) + "\n")
    path = tmp_path / "incoming" / f"no-{column}.parquet"
    path.parent.mkdir(exist_ok=True)
    read_table(good, adult_spec).drop(columns=[column]).to_parquet(path)
    return path


BAD_TEXT = {
    "malformed CSV": (
        lambda lines: "\n".join(lines[:5]) + "\n1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16\n",
        "malformed CSV: line 6 has 16 fields where source.names lists 15",
    ),
    "wrong type": (lambda lines: _with(lines, 0, "forty", 50), "column 'age': 8 value(s) are not numbers ('forty')"),
    "empty file": (lambda lines: b"", "file is empty (0 bytes)"),
    "non-UTF-8 bytes": (
        lambda lines: _with(lines, 13, "Espa\u00f1a", 7).encode("latin-1"),
        "not valid UTF-8 text",
    ),
    "unknown category above the allowed rate": (
        lambda lines: _with(lines, 1, "Robot", 10),
        "failed critical expectation: column 'workclass' column_values_to_be_in_set: 10.55% unexpected (e.g. 'Robot')",
    ),
    "label missing in rows": (
        lambda lines: _with(lines, 14, "?", 20),
        "failed critical expectation: column 'income' column_values_to_not_be_null",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_TEXT))
def test_bad_text_files_are_quarantined_intact(case, home, write, adult_lines):
    make, reason = BAD_TEXT[case]
    path = write(f"{case.replace(' ', '_')}.csv", make(adult_lines))
    _assert_quarantined(path, reason, home)


@pytest.mark.parametrize(
    ("column", "reason"),
    [("sex", "missing column(s): sex"), ("income", "label column 'income' is missing")],
)
def test_files_missing_a_column_are_quarantined_intact(
    column, reason, home, tmp_path, adult_spec, adult_lines
):
    path = _parquet_without(tmp_path, adult_spec, adult_lines, column)
    _assert_quarantined(path, reason, home)


def _assert_quarantined(path, reason, home):
    before = file_digest(path)
    [outcome] = _run([path], home)
    assert outcome.status == "quarantined"
    assert reason in outcome.reason
    folder = home.quarantine / outcome.quarantine_dir.rsplit("/", 1)[-1]
    assert file_digest(folder / path.name) == before, "quarantined copy differs"
    assert file_digest(path) == before, "original was modified"
    reason_lines = (folder / "reason.txt").read_text().splitlines()
    assert reason_lines == [outcome.reason]
    assert (folder / "report.json").is_file()
    assert BatchStore(home.batches).records() == []
    [entry] = AuditLog(home.audit).entries()
    assert (entry.action, entry.reason) == ("quarantined", outcome.reason)
    assert entry.evidence["quarantine"] == outcome.quarantine_dir


def test_good_file_is_accepted_and_stored_once(home, write, tmp_path, adult_spec, adult_lines):
    csv_path = write("part.csv", "\n".join(adult_lines) + "\n")
    parquet_path = tmp_path / "same-rows.parquet"
    read_table(csv_path, adult_spec).to_parquet(parquet_path)
    outcomes = _run([csv_path, csv_path, parquet_path], home)
    assert [o.status for o in outcomes] == ["accepted", "duplicate", "duplicate"]
    [record] = BatchStore(home.batches).records()
    assert record.rows == 400 and record.source == "part.csv" and record.labelled
    assert outcomes[0].report.endswith(".html")
    assert csv_path.exists(), "files outside the landing folder are only read"


def test_one_bad_file_does_not_stop_the_others(home, write, adult_lines):
    bad = write("bad.csv", b"")
    good = write("good.csv", "\n".join(adult_lines[:100]) + "\n")
    assert [o.status for o in _run([bad, good], home)] == ["quarantined", "accepted"]


def test_landing_files_are_moved_once_settled(home, adult_lines):
    home.landing.mkdir(parents=True)
    good = home.landing / "good.csv"
    good.write_text("\n".join(adult_lines[:100]) + "\n")
    bad = home.landing / "bad.csv"
    bad.write_bytes(b"")
    digest = file_digest(good)
    _, bad_outcome = _run([good, bad], home)
    assert not good.exists() and not bad.exists()
    assert file_digest(home.archive / f"{digest[:12]}-good.csv") == digest
    assert bad_outcome.status == "quarantined"


def test_transient_store_failure_is_retried(home, write, adult_lines, monkeypatch):
    calls = []
    real_put = BatchStore.put

    def flaky_put(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("injected: disk briefly unavailable")
        return real_put(self, *args, **kwargs)

    monkeypatch.setattr(BatchStore, "put", flaky_put)
    path = write("part.csv", "\n".join(adult_lines[:50]) + "\n")
    state = ingest([str(path)], str(ADULT_SPEC), str(home.root), return_state=True)
    [outcome] = state.result()
    assert outcome.status == "accepted" and len(calls) == 2
    assert task_runs(state)["accept-batch"].run_count == 2
    assert len(BatchStore(home.batches).records()) == 1


def test_missing_path_is_reported_and_nothing_is_retried(home, tmp_path):
    state = ingest(
        [str(tmp_path / "nowhere.csv")], str(ADULT_SPEC), str(home.root), return_state=True
    )
    [outcome] = state.result()
    assert (outcome.status, outcome.reason) == ("missing", "no such file")
    assert "parse-file" not in task_runs(state)
    assert home.quarantine.exists() is False


def test_csv_injection_text_is_kept_as_text(home, write, adult_lines):
    path = write("inj.csv", _with(adult_lines, 6, "=cmd|' /C calc'!A0", 200))
    [outcome] = _run([path], home)
    # An unknown occupation in 2 of 400 rows is below the 1% limit: accepted, the text untouched.
    assert outcome.status == "accepted"
    frame = BatchStore(home.batches).load(outcome.batch)
    assert (frame["occupation"] == "=cmd|' /C calc'!A0").sum() == 2
    assert isinstance(frame, pd.DataFrame)


def test_validation_and_summary_are_prefect_table_artifacts(home, write, adult_lines):
    path = write("bad-cat.csv", _with(adult_lines, 1, "Robot", 10))
    state = ingest([str(path)], str(ADULT_SPEC), str(home.root), return_state=True)
    published = artifacts(state)
    assert published["validation"].type == "table"
    rows = published["validation"].data
    rows = json.loads(rows) if isinstance(rows, str) else rows
    failed = [r for r in rows if r["result"] == "FAIL"]
    assert [r["column"] for r in failed] == ["workclass"] and "'Robot'" in failed[0]["detail"]
    assert "1 quarantined" in published["ingest-summary"].description


def test_the_monitor_says_what_it_could_check(home, write, adult_lines):
    """Before any batch, and before any training: nothing to compare with, said plainly."""
    from flows.monitor import monitor

    assert monitor(str(ADULT_SPEC), str(home.root)) == "no new batches"
    ingest(
        [str(write("batch.csv", "\n".join(adult_lines[:60]) + "\n"))],
        str(ADULT_SPEC),
        str(home.root),
    )
    found = monitor(str(ADULT_SPEC), str(home.root))
    assert found == "no model trained yet: nothing to compare with"


def test_an_accepted_batch_is_not_a_retrain_until_the_policy_says_so(home, write, adult_lines):
    state = ingest(
        [str(write("batch.csv", "\n".join(adult_lines[:60]) + "\n"))],
        str(ADULT_SPEC),
        str(home.root),
        return_state=True,
    )
    policy = artifacts(state)["retrain-policy"]
    assert policy.data.startswith("no retrain: 60 new rows since the last training")


def test_an_accepted_batch_without_labels_is_announced_for_scoring(home, tmp_path, adult_lines):
    def unlabelled(spec: dict) -> None:
        spec["label"]["allow_unlabelled_batches"] = True

    spec = adult_variant(tmp_path / "spec.yaml", unlabelled)
    path = tmp_path / "tonight.csv"
    path.write_text("".join(line.rsplit(",", 1)[0] + "\n" for line in adult_lines[:80]))
    [outcome] = ingest([str(path)], str(spec), str(home.root))
    assert outcome.status == "accepted", outcome.reason
    seen = [
        e
        for e in wait_for_events("assay.data.unlabelled")
        if e.payload["batches"] == [outcome.batch]
    ]
    assert len(seen) == 1 and seen[0].resource.id == "assay.dataset.adult"
