"""Latency and throughput of a model, measured on encoded rows (tokenizing excluded).

Anything that scores an encoded batch can be timed (an onnxruntime session, a torch module), so
every row of the compression benchmark is measured by the same code."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from assay.modeling.tokenizer import Encoded

Runner = Callable[[Encoded], object]  # scores one encoded batch


def onnx_runner(sess: ort.InferenceSession) -> Runner:
    return lambda batch: sess.run(None, batch.feeds())


def latency_ms(run: Runner, rows: Encoded, runs: int = 300) -> tuple[float, float]:
    """(p50, p95) of single-row calls over `runs` rows, after a short warm-up."""
    singles = [rows.take(slice(i % len(rows), i % len(rows) + 1)) for i in range(runs)]
    for one in singles[:20]:
        run(one)
    times = []
    for one in singles:
        started = time.perf_counter()
        run(one)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def throughput(
    run: Runner, rows: Encoded, batch: int = 256, seconds: float = 2.0, workers: int = 1
) -> float:
    """Rows per second scoring batches of `batch` rows for about `seconds`, from `workers`
    threads at once (each on its own batch): how a server uses several cores with a model too
    small for intra-op threads to pay off. onnxruntime and torch release the GIL while they
    compute."""
    parts = [rows.take(slice(i * batch, (i + 1) * batch)) for i in range(workers)]
    run(parts[0])
    done = [0] * workers
    deadline = time.perf_counter() + seconds

    def loop(worker: int) -> None:
        while time.perf_counter() < deadline:
            run(parts[worker])
            done[worker] += len(parts[worker])

    threads = [threading.Thread(target=loop, args=(w,)) for w in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)
