"""Latency and throughput of an ONNX model, measured on encoded rows (tokenizing excluded)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from assay.modeling.tokenizer import Encoded


def session(model: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def latency_ms(sess: ort.InferenceSession, rows: Encoded, runs: int = 300) -> tuple[float, float]:
    """(p50, p95) of single-row calls over `runs` rows, after a short warm-up."""
    feeds = [rows.take(slice(i % len(rows), i % len(rows) + 1)).feeds() for i in range(runs)]
    for f in feeds[:20]:
        sess.run(None, f)
    times = []
    for f in feeds:
        started = time.perf_counter()
        sess.run(None, f)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def throughput(
    sess: ort.InferenceSession, rows: Encoded, batch: int = 256, seconds: float = 2.0
) -> float:
    """Rows per second scoring batches of `batch` rows for about `seconds`."""
    feeds = rows.take(slice(0, batch)).feeds()
    sess.run(None, feeds)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        sess.run(None, feeds)
        done += batch
    return done / (time.perf_counter() - started)
