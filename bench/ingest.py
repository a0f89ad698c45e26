"""Benchmark: parse, validate and store the full bundled Adult data (48,842 rows).

Each phase is timed separately over several repeats into a fresh temporary store; the median
is reported as rows per second. The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from assay.config import load_spec
from assay.data.reader import read_table
from assay.data.store import BatchStore
from assay.validation.check import check
from assay.validation.suite import load_suite

REPEATS = 3


def main(spec_path: str, profile: str | None = None) -> int:
    spec = load_spec(spec_path, profile)
    suite = load_suite(spec.expectations)
    timings: dict[str, list[float]] = {"parse": [], "validate": [], "store": []}
    rows = 0
    for attempt in range(REPEATS):
        with tempfile.TemporaryDirectory(prefix="assay-bench-") as scratch:
            store = BatchStore(Path(scratch) / "batches")
            rows = 0
            spent = dict.fromkeys(timings, 0.0)
            for path in spec.bundled:
                started = time.perf_counter()
                frame = read_table(path, spec)
                spent["parse"] += time.perf_counter() - started

                started = time.perf_counter()
                report = check(frame, suite)
                spent["validate"] += time.perf_counter() - started

                started = time.perf_counter()
                store.put(frame, source=path, labelled=True, warnings=[])
                spent["store"] += time.perf_counter() - started
                rows += len(frame)
                if not report.passed:
                    raise SystemExit(f"{path}: bundled data failed validation: {report.reason}")
            for phase, seconds in spent.items():
                timings[phase].append(seconds)
            print(
                f"repeat {attempt + 1}/{REPEATS}: "
                + ", ".join(f"{p} {s:.3f}s" for p, s in spent.items())
            )
    median = {phase: statistics.median(values) for phase, values in timings.items()}
    total = sum(median.values())
    result = {
        "bench": "ingest",
        "rows": rows,
        "files": len(spec.bundled),
        "repeats": REPEATS,
        **{f"{phase}_rows_per_s": round(rows / s) for phase, s in median.items()},
        "validate_and_store_rows_per_s": round(rows / (median["validate"] + median["store"])),
        "end_to_end_rows_per_s": round(rows / total),
        "end_to_end_seconds": round(total, 3),
    }
    print(json.dumps(result))
    return 0
