"""The one place an onnxruntime session is made, so every scorer and benchmark runs the model
with the same options."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def session(model: Path, threads: int) -> ort.InferenceSession:
    """A CPU session using `threads` intra-op threads (0: onnxruntime's default, all cores)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
