"""Benchmark: how ingest + train grow with the data. Adult is resampled with noise to 10k, 50k,
200k and 1M rows and landed as files of at most 100k rows (how batches arrive); each size is
ingested and trained (the spec's quick profile by default, a random split) in a fresh process and
ASSAY_HOME. Reports seconds, seconds per 1,000 rows and peak memory (RSS) per size, and the
growth of seconds per row from 50k to 1M rows. The last line printed is JSON.

    assay bench scaling                # all sizes
    ASSAY_SCALING_SIZES=10000,50000 assay bench scaling
    ASSAY_SCALING_SIZES=1000,10000,100000 assay bench scaling --profile full  # as benchmarked

A size whose run fails a gate (Adult's fairness gate on 1,000 resampled rows) still reports its
time, with the reason beside it.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from assay.config import Spec, load_spec
from assay.data.reader import read_table
from assay.errors import GateFailed

SIZES = (10_000, 50_000, 200_000, 1_000_000)
FILE_ROWS = 100_000  # one landed file at most: ingest holds one file's rows at a time
JITTER = 0.05  # numeric noise, as a share of the column's standard deviation
GROWTH_MAX = 1.5  # seconds per row at 1M over seconds per row at 50k
MEMORY_MAX_MB = 4096


def resample(source: pd.DataFrame, spec: Spec, rows: int, seed: int) -> pd.DataFrame:
    """Rows drawn with replacement; numeric cells moved by a little noise (rounded to whole
    numbers and kept in the observed range, as the census writes them) so copies are new rows."""
    rng = np.random.default_rng(seed)
    frame = source.iloc[rng.integers(0, len(source), rows)].reset_index(drop=True)
    for column in spec.columns_of_type("numeric"):
        values = frame[column].astype("float64")
        noise = rng.normal(0, JITTER * values.std(), rows)
        moved = (values + noise).round().clip(values.min(), values.max())
        frame[column] = moved.where(values.notna())
    return frame


def land(frame: pd.DataFrame, spec: Spec, folder: Path) -> list[Path]:
    """CSV files in the spec's own format (no header, its column order, '?' for missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = spec.source.names or list(frame.columns)
    paths = []
    for number, start in enumerate(range(0, len(frame), FILE_ROWS)):
        path = folder / f"batch-{number:03d}.csv"
        part = frame.iloc[start : start + FILE_ROWS][names]
        part.to_csv(path, header=False, index=False, na_rep="?", float_format="%.0f")
        paths.append(path)
    return paths


def scaling_spec(spec_path: str, folder: Path) -> Path:
    """The spec with a random split (resampled rows have no test file) and no bundled files."""
    raw = yaml.safe_load(Path(spec_path).read_text(encoding="utf-8"))
    raw["expectations"] = str((Path(spec_path).parent / raw["expectations"]).resolve())
    raw["bundled"] = []
    raw["split"] = {"rule": "random", "test_fraction": 0.2, "validation_fraction": 0.1, "seed": 0}
    path = folder / "scaling.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def measure(spec_path: str, profile: str, home: Path, files: list[str]) -> dict:
    """In the child: ingest the files, then train; time and peak RSS."""
    from assay.home import Home
    from cli.main import prepare_environment

    prepare_environment(Home(home))
    os.environ["ASSAY_PROGRESS"] = "0"
    from flows.ingest import ingest
    from flows.train import train

    started = time.perf_counter()
    outcomes = ingest(files, spec_path, str(home))
    ingested = time.perf_counter()
    rejected = [o.reason for o in outcomes if o.status != "accepted"]
    if rejected:
        raise SystemExit(f"resampled batches were rejected: {rejected[:3]}")
    try:
        auc: float | None = round(
            train(spec_path, str(home), profile).metrics["student_int8"]["roc_auc"], 4
        )
        failed = None
    except GateFailed as exc:  # the time is still the time; the reason is reported beside it
        auc, failed = None, str(exc)
    finished = time.perf_counter()
    return {
        "ingest_seconds": round(ingested - started, 2),
        "train_seconds": round(finished - ingested, 2),
        "seconds": round(finished - started, 2),
        "test_roc_auc": auc,
        "gate_failed": failed,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main(spec_path: str, profile: str | None = None) -> int:
    """`profile` defaults to quick: the teacher trains on its subsample, the rest on all rows."""
    profile = profile or "quick"
    spec = load_spec(spec_path)
    sizes = [int(s) for s in os.environ.get("ASSAY_SCALING_SIZES", "").split(",") if s] or SIZES
    source = read_table(spec.bundled[0], spec)
    rows = []
    with tempfile.TemporaryDirectory(prefix="assay-scaling-") as scratch:
        root = Path(scratch)
        scaled_spec = scaling_spec(spec_path, root)
        for size in sizes:
            files = land(resample(source, spec, size, seed=size), spec, root / f"data-{size}")
            command = [sys.executable, "-m", "bench.scaling", str(scaled_spec), profile]
            command += [str(root / f"home-{size}"), *map(str, files)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{size} rows failed:\n{done.stderr[-3000:]}")
            row = {"rows": size, **json.loads(done.stdout.strip().splitlines()[-1])}
            row["seconds_per_1k_rows"] = round(1000 * row["seconds"] / size, 3)
            rows.append(row)
            print(
                f"{size:>9,} rows: {row['seconds']:8.1f} s (ingest {row['ingest_seconds']:.1f}, "
                f"train {row['train_seconds']:.1f}), {row['seconds_per_1k_rows']:.3f} s per 1k "
                f"rows, peak {row['peak_rss_mb']:,} MB, int8 AUC {row['test_roc_auc']}"
                + (f", gate failed: {row['gate_failed']}" if row["gate_failed"] else ""),
                flush=True,
            )
    by_size = {r["rows"]: r for r in rows}
    growth = None
    if 50_000 in by_size and 1_000_000 in by_size:
        growth = round(
            by_size[1_000_000]["seconds_per_1k_rows"] / by_size[50_000]["seconds_per_1k_rows"], 3
        )
    result = {
        "bench": "scaling",
        "profile": profile,
        "cores": os.cpu_count(),
        "file_rows": FILE_ROWS,
        "sizes": rows,
        "per_row_growth_50k_to_1m": growth,
        "targets": {"per_row_growth_max": GROWTH_MAX, "peak_rss_mb_max_at_1m": MEMORY_MAX_MB},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    spec_file, profile_name, home_path, *batch_files = sys.argv[1:]
    print(json.dumps(measure(spec_file, profile_name, Path(home_path), batch_files)))
