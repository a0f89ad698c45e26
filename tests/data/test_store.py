import json
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from assay.data.atomic import TEMP_PREFIX, remove_stale_temps
from assay.data.fingerprint import file_digest, frame_digest
from assay.data.store import BatchStore, Quarantine, StoreError


def _frame(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"x": [float(i) for i in range(n)], "y": ["a"] * n})


def test_same_content_is_stored_once(tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("x\n")
    store = BatchStore(tmp_path / "batches")
    first = store.put(_frame(), source=source, labelled=True, warnings=[])
    again = store.put(_frame(), source=source, labelled=True, warnings=[])
    assert (first.created, again.created) == (True, False)
    assert again.record == first.record and first.record.hash == frame_digest(_frame())
    assert again.superseded == ()
    first = first.record
    assert len(store.records()) == 1
    pd.testing.assert_frame_equal(store.load(first.hash), _frame())


def test_different_files_add_batches(tmp_path):
    store = BatchStore(tmp_path / "batches")
    for n in (3, 4):
        source = tmp_path / f"{n}.csv"
        source.write_text(f"{n}\n")
        store.put(_frame(n), source=source, labelled=True, warnings=[])
    expected = sorted([3, 4], key=lambda n: frame_digest(_frame(n)))
    assert [r.rows for r in store.active()] == [r.rows for r in store.records()] == expected


def test_the_same_file_parsed_differently_supersedes_its_batch(tmp_path):
    """A spec edit that changes parsing must not put the file's rows in twice."""
    source = tmp_path / "a.csv"
    source.write_text("x\n")
    store = BatchStore(tmp_path / "batches")
    old = store.put(_frame(3), source=source, labelled=True, warnings=[], parsed_with="v1")
    new = store.put(
        _frame(3).rename(columns={"x": "z"}),
        source=source,
        labelled=True,
        warnings=[],
        parsed_with="v2",
    )
    assert new.created and new.superseded == (old.record.hash,)
    assert store.active() == [new.record] and len(store.records()) == 2
    assert store.statuses() == {old.record.hash: "superseded"}
    assert new.record.parsed_with == "v2"
    # Parsing it the old way again brings the old batch back, and supersedes the new one
    back = store.put(_frame(3), source=source, labelled=True, warnings=[], parsed_with="v1")
    assert not back.created and back.superseded == (new.record.hash,)
    assert store.active() == [old.record]


def test_retire_and_restore_are_logged_and_reversible(tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("x\n")
    store = BatchStore(tmp_path / "batches")
    record = store.put(_frame(), source=source, labelled=True, warnings=[]).record
    store.retire(record.hash[:12], "rows from a broken sensor")
    assert store.active() == []
    assert store.put(_frame(), source=source, labelled=True, warnings=[]).status == "retired"
    with pytest.raises(StoreError, match="retired already"):
        store.retire(record.hash[:8], "again")
    store.restore(record.hash[:8], "sensor was fine")
    assert store.active() == [record]
    with pytest.raises(StoreError, match="not retired"):
        store.restore(record.hash[:8], "again")
    assert [c.status for c in store.status_changes()] == ["retired", "active"]


def test_an_unknown_or_ambiguous_batch_id_is_refused(tmp_path):
    store = BatchStore(tmp_path / "batches")
    for n in range(20):  # 20 hashes: some two share their first hex digit
        source = tmp_path / f"{n}.csv"
        source.write_text(f"{n}\n")
        store.put(_frame(n + 1), source=source, labelled=True, warnings=[])
    firsts = [r.hash[0] for r in store.records()]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    for prefix in ("", "zz", shared):
        with pytest.raises(StoreError, match="see `assay batches`"):
            store.resolve(prefix)


def test_restore_refuses_a_second_active_copy_of_one_file(tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("x\n")
    store = BatchStore(tmp_path / "batches")
    old = store.put(_frame(3), source=source, labelled=True, warnings=[]).record
    store.retire(old.hash, "parsed wrongly")
    store.put(_frame(3).rename(columns={"x": "z"}), source=source, labelled=True, warnings=[])
    with pytest.raises(StoreError, match="retire it first"):
        store.restore(old.hash, "undo")


def test_quarantine_keeps_original_bytes_and_reason(tmp_path):
    source = tmp_path / "bad.csv"
    source.write_bytes(b"\xff\xfe not text")
    digest = file_digest(source)
    folder = Quarantine(tmp_path / "q").put(
        source, reason="not valid UTF-8", report={"stage": "read"}, move=False
    )
    assert file_digest(folder / "bad.csv") == digest
    assert source.read_bytes() == b"\xff\xfe not text"
    assert (folder / "reason.txt").read_text() == "not valid UTF-8\n"
    report = json.loads((folder / "report.json").read_text())
    assert report["source_sha256"] == digest and report["stage"] == "read"


def test_quarantine_move_removes_the_original_only_after_commit(tmp_path):
    source = tmp_path / "landing.csv"
    source.write_text("x\n1\n")
    folder = Quarantine(tmp_path / "q").put(source, reason="r", report={}, move=True)
    assert not source.exists()
    assert (folder / "landing.csv").read_text() == "x\n1\n"


def test_stale_temps_are_cleaned_but_young_ones_kept(tmp_path):
    old = tmp_path / f"{TEMP_PREFIX}old"
    young = tmp_path / f"{TEMP_PREFIX}young"
    old.write_text("partial")
    young.write_text("partial")
    os.utime(old, (0, 0))
    assert remove_stale_temps(tmp_path) == 1
    assert young.exists() and not old.exists()


_KILL_AT_RENAME = """
import os, signal, sys
import assay.data.atomic as atomic
import assay.data.store as store
from pathlib import Path
import pandas as pd
import pytest

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

root, source, target = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if target == "store":
    atomic.os.replace = die
    store.BatchStore(root / "batches").put(
        pd.DataFrame({"x": [1.0, 2.0]}), source=source, labelled=True, warnings=[])
else:
    store.os.rename = die
    store.Quarantine(root / "q").put(source, reason="bad", report={}, move=True)
"""


def _killed_mid_write(tmp_path, target: str):
    source = tmp_path / "incoming.csv"
    source.write_bytes(b"x\n1\n2\n")
    script = tmp_path / "die.py"
    script.write_text(textwrap.dedent(_KILL_AT_RENAME))
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(source), target], capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL
    return source


def test_kill_during_batch_write_leaves_no_batch_and_the_file_intact(tmp_path):
    source = _killed_mid_write(tmp_path, "store")
    store = BatchStore(tmp_path / "batches")
    assert store.records() == []
    assert any(p.name.startswith(TEMP_PREFIX) for p in store.root.iterdir())
    assert source.read_bytes() == b"x\n1\n2\n"
    stored = store.put(pd.DataFrame({"x": [1.0, 2.0]}), source=source, labelled=True, warnings=[])
    assert stored.created and store.records() == [stored.record]


def test_kill_during_quarantine_keeps_the_original(tmp_path):
    source = _killed_mid_write(tmp_path, "quarantine")
    quarantine = Quarantine(tmp_path / "q")
    assert quarantine.entries() == []
    assert source.read_bytes() == b"x\n1\n2\n"
    folder = quarantine.put(source, reason="bad", report={}, move=True)
    assert quarantine.entries() == [folder] and not source.exists()
