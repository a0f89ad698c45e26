import json
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd

from assay.data.atomic import TEMP_PREFIX, remove_stale_temps
from assay.data.fingerprint import file_digest, frame_digest
from assay.data.store import BatchStore, Quarantine


def _frame(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"x": [float(i) for i in range(n)], "y": ["a"] * n})


def test_same_content_is_stored_once(tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("x\n")
    store = BatchStore(tmp_path / "batches")
    first, created = store.put(_frame(), source=source, labelled=True, warnings=[])
    again, created_again = store.put(_frame(), source=source, labelled=True, warnings=[])
    assert (created, created_again) == (True, False)
    assert again == first and first.hash == frame_digest(_frame())
    assert len(store.records()) == 1
    pd.testing.assert_frame_equal(store.load(first.hash), _frame())


def test_different_content_gets_a_new_batch(tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("x\n")
    store = BatchStore(tmp_path / "batches")
    store.put(_frame(3), source=source, labelled=True, warnings=[])
    store.put(_frame(4), source=source, labelled=True, warnings=[])
    assert [r.rows for r in store.records()] == sorted(
        [3, 4], key=lambda n: frame_digest(_frame(n))
    )


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
    record, created = store.put(
        pd.DataFrame({"x": [1.0, 2.0]}), source=source, labelled=True, warnings=[]
    )
    assert created and store.records() == [record]


def test_kill_during_quarantine_keeps_the_original(tmp_path):
    source = _killed_mid_write(tmp_path, "quarantine")
    quarantine = Quarantine(tmp_path / "q")
    assert quarantine.entries() == []
    assert source.read_bytes() == b"x\n1\n2\n"
    folder = quarantine.put(source, reason="bad", report={}, move=True)
    assert quarantine.entries() == [folder] and not source.exists()
