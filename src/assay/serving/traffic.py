"""What a served model sees, recorded for drift monitoring without keeping the rows.

With ASSAY_TRAFFIC naming a folder (`assay serve-model` sets it to traffic/<dataset>/; set it
for `mlflow models serve` or an in-process model too), the pyfunc model buffers the rows it
scores, read as the spec reads them, and their probabilities, and every WINDOW_ROWS rows (or at
the first request after WINDOW_SECONDS, and at exit) writes one window: the reference-profile
statistics of those rows (bins and shares, a sample of each numeric column, the score profile)
with the package digest of the model that scored them. The rows themselves are written only
when ASSAY_TRAFFIC_ROWS=1 (beside the window, as parquet). The monitor flow compares the
windows of the champion with its reference profile (assay.monitoring.traffic).
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from assay.config import Spec
from assay.data.atomic import write_atomic, write_json_atomic
from assay.serving.profile import ReferenceProfile, build_profile

TRAFFIC_ENV = "ASSAY_TRAFFIC"
ROWS_ENV = "ASSAY_TRAFFIC_ROWS"
WINDOW_ROWS = 1000  # at most SAMPLE_ROWS, so a window's samples hold every value it saw
WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class TrafficWindow:
    """One window of served traffic."""

    package: str  # digest of the package that scored it
    started: str
    ended: str
    profile: ReferenceProfile

    @classmethod
    def load(cls, path: Path) -> TrafficWindow:
        raw = json.loads(path.read_text(encoding="utf-8"))
        profile = ReferenceProfile.from_dict(raw["profile"])
        return cls(raw["package"], raw["started"], raw["ended"], profile)


@dataclass
class TrafficRecorder:
    """Buffers scored rows and writes them out a window at a time (thread-safe)."""

    folder: Path
    spec: Spec
    package: str
    keep_rows: bool = False
    _rows: list[pd.DataFrame] = field(default_factory=list)
    _scores: list[np.ndarray] = field(default_factory=list)
    _started: float | None = None
    _buffered: int = 0
    _written: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_env(cls, spec: Spec, package: str) -> TrafficRecorder | None:
        folder = os.environ.get(TRAFFIC_ENV)
        if not folder:
            return None
        recorder = cls(Path(folder), spec, package, os.environ.get(ROWS_ENV) == "1")
        atexit.register(recorder.flush)
        return recorder

    def record(self, rows: pd.DataFrame, probability: np.ndarray) -> None:
        """Cheap per call (a request waits on it): the frame is kept as it is, and only a
        window's worth is profiled."""
        with self._lock:
            self._started = self._started or time.time()
            self._rows.append(rows)
            self._scores.append(np.asarray(probability, dtype=np.float64))
            self._buffered += len(rows)
            if self._buffered >= WINDOW_ROWS or time.time() - self._started >= WINDOW_SECONDS:
                self._write()

    def flush(self) -> None:
        with self._lock:
            if self._rows:
                self._write()

    def _write(self) -> None:
        rows = pd.concat(self._rows, ignore_index=True)[self.spec.feature_columns]
        scores = np.concatenate(self._scores)
        started = _iso(self._started or time.time())
        self._rows, self._scores, self._started, self._buffered = [], [], None, 0
        self._written += 1
        stem = f"{started.replace(':', '')}-{os.getpid()}-{self._written:06d}"
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.keep_rows:
            kept = rows.assign(probability=scores)
            write_atomic(self.folder / f"{stem}.parquet", lambda p: kept.to_parquet(p))
        window = {
            "package": self.package,
            "started": started,
            "ended": _iso(time.time()),
            "profile": build_profile(rows, self.spec, scores).to_dict(),
        }
        write_json_atomic(self.folder / f"{stem}.json", window)


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")
