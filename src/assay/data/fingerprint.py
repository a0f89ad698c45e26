"""Content hashes: a batch is named by what it holds, a snapshot by the batches it lists."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's column names, dtypes and values (not of its file encoding), so the
    same rows arriving as CSV or Parquet are one batch."""
    h = hashlib.sha256()
    for name, dtype in frame.dtypes.items():
        h.update(f"{name}:{dtype}\n".encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, to prove an original was kept untouched."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def snapshot_fingerprint(batch_hashes: Iterable[str], spec_digest: str) -> str:
    """The key every downstream result is stored under: hash of the sorted batch hashes plus
    the spec, so adding a batch or changing the spec gives a new fingerprint."""
    h = hashlib.sha256(spec_digest.encode())
    for batch in sorted(batch_hashes):
        h.update(batch.encode())
    return h.hexdigest()


def row_keys(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A 64-bit hash per row of the cells in `columns`, compared as text so that batches whose
    dtypes differ (a column all missing in one file) still give equal rows equal keys."""
    cells = frame.reindex(columns=columns).astype("string")
    return pd.util.hash_pandas_object(cells, index=False).to_numpy(dtype=np.uint64)
