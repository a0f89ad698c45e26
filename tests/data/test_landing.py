"""The landing watcher reports each complete file once, never a half-written one."""

from __future__ import annotations

import os

import pytest

from assay.data.landing import LandingWatcher, strays


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def landing(tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


def watcher(landing, clock, ledger=None):
    return LandingWatcher(landing, ledger or landing.parent / "ledger.json", 1.0, clock)


def test_a_file_is_ready_once_it_stops_changing_and_is_reported_once(landing):
    clock = Clock()
    w = watcher(landing, clock)
    (landing / "a.csv").write_text("x\n1\n")
    assert w.poll() == []  # first look starts the clock
    clock.now = 0.5
    assert w.poll() == []  # not settled yet
    clock.now = 1.5
    assert w.poll() == [landing / "a.csv"]
    clock.now = 5.0
    assert w.poll() == []


def test_a_growing_file_is_not_ready_until_it_stops_growing(landing):
    clock = Clock()
    w = watcher(landing, clock)
    path = landing / "big.csv"
    path.write_text("x\n")
    for step in range(1, 5):
        w.poll()
        clock.now = float(step) * 2  # longer than settle_seconds, but the file keeps growing
        with path.open("a") as f:
            f.write("1\n")
        os.utime(path, ns=(step * 10**9, step * 10**9))
        assert w.poll() == []
    clock.now = 20.0
    assert w.poll() == [path]


@pytest.mark.parametrize(
    "name", [".hidden.csv", "upload.csv.part", "b.csv.tmp", "c.csv.partial", "d.crdownload", "e~"]
)
def test_in_progress_names_are_never_ready(landing, name):
    clock = Clock()
    w = watcher(landing, clock)
    (landing / name).write_text("x\n1\n")
    w.poll()
    clock.now = 10.0
    assert w.poll() == []


def test_symlinks_and_folders_are_not_followed(landing, tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("x\n1\n")
    (landing / "link.csv").symlink_to(outside)
    (landing / "folder").mkdir()
    clock = Clock()
    w = watcher(landing, clock)
    w.poll()
    clock.now = 10.0
    assert w.poll() == []


def test_a_restarted_watcher_does_not_report_a_waiting_file_again(landing):
    clock = Clock()
    (landing / "a.csv").write_text("x\n1\n")
    first = watcher(landing, clock)
    first.poll()
    clock.now = 2.0
    assert first.poll() == [landing / "a.csv"]
    second = watcher(landing, clock)
    second.poll()
    clock.now = 4.0
    assert second.poll() == []


def test_a_name_reused_after_the_file_left_is_a_new_file(landing):
    clock = Clock()
    w = watcher(landing, clock)
    path = landing / "daily.csv"
    path.write_text("x\n1\n")
    w.poll()
    clock.now = 2.0
    assert w.poll() == [path]
    path.unlink()  # ingest archived it
    w.poll()
    path.write_text("x\n2\n")
    clock.now = 3.0
    w.poll()
    clock.now = 5.0
    assert w.poll() == [path]


def test_many_files_at_once_are_each_reported_exactly_once(landing):
    clock = Clock()
    w = watcher(landing, clock)
    for i in range(20):
        (landing / f"part-{i:02d}.csv").write_text(f"x\n{i}\n")
    reported = []
    for step in range(6):
        clock.now = step * 0.5
        reported += w.poll()
    assert sorted(p.name for p in reported) == [f"part-{i:02d}.csv" for i in range(20)]


def test_what_no_served_dataset_picks_up_is_named(tmp_path):
    """The landing root holds one folder per dataset; a file at the top (the layout of earlier
    versions) or the folder of a dataset nobody serves is reported, a file on its way is not."""
    root = tmp_path / "landing"
    for name in ("adult", "churn", "retired"):
        (root / name).mkdir(parents=True)
    (root / "old.csv").write_text("x\n")
    (root / ".incoming.csv.part").write_text("x\n")
    assert strays(root, ["adult", "churn"]) == [root / "old.csv", root / "retired"]
    assert strays(root, ["adult", "churn", "retired", "old.csv"]) == []
    assert strays(tmp_path / "none", ["adult"]) == []
