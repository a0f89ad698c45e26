"""Load: 200 files land within a minute while a training runs on a Dask cluster. Each file is
accepted or quarantined exactly once, nothing is lost, the training ships the same model."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from assay.data.landing import LandingWatcher
from assay.data.store import BatchStore, Quarantine
from assay.home import Home
from flows.ingest import ingest
from flows.runners import local_dask
from flows.train import train
from tests.conftest import ADULT_SPEC

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("prefect_api")]

FILES, BAD_EVERY, ROWS = 200, 10, 20  # every 10th file fails validation
DROP_SECONDS = 40.0


def _content(adult_lines: list[str], i: int) -> str:
    """Rows of one file: a distinct slice of Adult (7 and 400 are coprime: distinct starts)."""
    rows = [adult_lines[(i * 7 + k) % len(adult_lines)] for k in range(ROWS)]
    if i % BAD_EVERY == 0:
        rows[3] = "forty" + rows[3][rows[3].index(",") :]  # age is not a number
    return "\n".join(rows) + "\n"


def _drop(home: Home, adult_lines: list[str]) -> None:
    """Write each file under a temporary name, then rename it: the way writers should land."""
    for i in range(FILES):
        partial = home.landing / f"file-{i:03d}.csv.part"
        partial.write_text(_content(adult_lines, i), encoding="utf-8")
        partial.rename(home.landing / f"file-{i:03d}.csv")
        time.sleep(DROP_SECONDS / FILES)


def _ingest_landing(home: Home, dropper: threading.Thread, report: dict) -> None:
    """The watcher's loop, in process: each poll's ready files make one ingest run."""
    watcher = LandingWatcher(home.landing, home.root / "landing-ledger.json", settle_seconds=0.5)
    began = time.monotonic()
    outcomes, runs = [], 0
    while dropper.is_alive() or any(home.landing.iterdir()):
        if time.monotonic() - began > 600:
            break  # the assertions below say what was missed
        ready = watcher.poll()
        if ready:
            outcomes += ingest([str(p) for p in ready], str(ADULT_SPEC), str(home.root))
            runs += 1
        else:
            time.sleep(0.25)
    report.update(outcomes=outcomes, runs=runs, seconds=time.monotonic() - began)


def test_two_hundred_files_land_during_a_dask_training(quick_adult_run, tmp_path, adult_lines):
    """The training runs on a local two-worker Dask cluster (the distributed runner) from a
    snapshot of the batches accepted before; the 200 files are ingested into the same store
    meanwhile. The training ships a model byte-identical to the quick run's (the default
    runner, same batches), and every file is accepted or quarantined exactly once."""
    reference, _ = quick_adult_run
    home = Home(tmp_path / "home", "adult")
    shutil.copytree(reference.batches, home.batches)
    before = len(BatchStore(home.batches).records())
    home.landing.mkdir(parents=True)
    dropper = threading.Thread(target=_drop, args=(home, adult_lines))
    report: dict = {}
    ingesting = threading.Thread(target=_ingest_landing, args=(home, dropper, report))
    dropper.start()
    ingesting.start()
    try:
        result = train.with_options(task_runner=local_dask(workers=2))(
            str(ADULT_SPEC), str(home.root), "quick"
        )
    finally:
        ingesting.join()
    seconds, runs = report["seconds"], report["runs"]
    print(f"{FILES} files in {seconds:.1f} s ({FILES / seconds:.2f} files/s), {runs} ingest runs")

    assert result.cached == []  # trained from scratch: the quick run's caches are its home's
    shipped = Path(result.student).relative_to(home.root) / "model.int8.onnx"
    assert (home.root / shipped).read_bytes() == (reference.root / shipped).read_bytes()
    names = sorted(os.path.basename(o.path) for o in report["outcomes"])
    assert names == [f"file-{i:03d}.csv" for i in range(FILES)]  # each exactly once
    bad = {f"file-{i:03d}.csv" for i in range(0, FILES, BAD_EVERY)}
    for o in report["outcomes"]:
        expected = "quarantined" if os.path.basename(o.path) in bad else "accepted"
        assert o.status == expected, (o.path, o.reason)
    assert len(BatchStore(home.batches).records()) == before + FILES - len(bad)
    assert len(Quarantine(home.quarantine).entries()) == len(bad)
    assert len(list(home.archive.iterdir())) == FILES - len(bad)
