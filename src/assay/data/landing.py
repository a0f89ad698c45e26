"""Which files in the landing folder are ready to ingest.

A file is ready once it is complete: a plain file whose size and modification time have not
changed for `settle_seconds`, checked across polls. Names that writers use while a file is
still on its way (dot-files, `*.part`, `*.tmp`, `*.partial`, `*.crdownload`, `*~`) are never
ready; writing to such a name and renaming it when done is the safe way to drop a file.

Each ready file is reported once. The ledger of reported files lives on disk, so a restarted
watcher does not report a file again while it still waits in the landing folder; entries for
files that have left the folder (archived or quarantined by ingest) are dropped, so a new file
that reuses a name is reported as new.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from assay.data.atomic import write_json_atomic

IN_PROGRESS_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", "~")


@dataclass(frozen=True)
class Seen:
    """What a file looked like at one poll: a change in either means it is still being written."""

    size: int
    mtime_ns: int


def in_progress(name: str) -> bool:
    """Names that mean 'not finished yet' by the usual writer conventions."""
    return name.startswith(".") or name.endswith(IN_PROGRESS_SUFFIXES)


class LandingWatcher:
    """Polls one folder; `poll()` returns the files that became ready since the last call."""

    def __init__(
        self,
        folder: Path,
        ledger: Path,
        settle_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder, self.ledger, self.settle, self.clock = folder, ledger, settle_seconds, clock
        self._pending: dict[str, tuple[Seen, float]] = {}  # name -> (last look, since when)
        self._reported = self._read_ledger()

    def poll(self) -> list[Path]:
        """Ready files, oldest name first; each is returned once."""
        now = self.clock()
        present = self._candidates()
        ready = []
        for name, seen in sorted(present.items()):
            if self._reported.get(name) == seen:
                continue
            previous = self._pending.get(name)
            if previous is None or previous[0] != seen:
                self._pending[name] = (seen, now)  # new, or still growing: start the clock
            elif now - previous[1] >= self.settle:
                ready.append(name)
        for name in ready:
            self._reported[name] = present[name]
            del self._pending[name]
        gone = [name for name in self._reported if name not in present]
        for name in gone:
            del self._reported[name]
        self._pending = {n: v for n, v in self._pending.items() if n in present}
        if ready or gone:
            self._write_ledger()
        return [self.folder / name for name in ready]

    def _candidates(self) -> dict[str, Seen]:
        """Plain files directly in the folder (symlinks and folders are not followed)."""
        if not self.folder.is_dir():
            return {}
        found = {}
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if in_progress(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # moved away between listing and looking
                    continue
                found[entry.name] = Seen(stat.st_size, stat.st_mtime_ns)
        return found

    def _read_ledger(self) -> dict[str, Seen]:
        if not self.ledger.is_file():
            return {}
        raw = json.loads(self.ledger.read_text(encoding="utf-8"))
        return {name: Seen(**seen) for name, seen in raw.items()}

    def _write_ledger(self) -> None:
        write_json_atomic(self.ledger, {name: asdict(s) for name, s in self._reported.items()})


def strays(root: Path, datasets: list[str]) -> list[Path]:
    """What sits in the landing root outside every served dataset's folder (`root/<name>/`):
    a file dropped at the top (the layout of earlier versions), or the folder of a dataset
    nobody serves. Nothing picks these up; the stack says so instead of ignoring them."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if not in_progress(p.name) and p.name not in datasets)
