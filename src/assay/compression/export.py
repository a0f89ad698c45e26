"""Export a record classifier to ONNX and prove the file computes what torch computes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from assay.modeling.encoder import RecordClassifier, tensors
from assay.modeling.tokenizer import Encoded

INPUTS = ("ids", "values", "numeric", "attention")
OPSET = 17


def export_onnx(model: RecordClassifier, sample: Encoded, path: Path) -> Path:
    """Write the model with dynamic batch and sequence axes, then run onnx.checker on it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    with warnings.catch_warnings():
        # The TorchScript exporter warns about every Python branch it traces through in BERT.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tensors(sample.take(slice(0, 2))),
            str(path),
            input_names=list(INPUTS),
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return path


@torch.no_grad()
def max_logit_difference(
    model: RecordClassifier, path: Path, data: Encoded, batch_size: int = 4096
) -> float:
    """Largest absolute difference between torch and ONNX Runtime logits over `data`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model.eval()
    worst = 0.0
    for start in range(0, len(data), batch_size):
        part = data.take(slice(start, start + batch_size))
        expected = model(*tensors(part)).numpy()
        got = session.run(["logits"], part.feeds())[0]
        worst = max(worst, float(np.abs(expected - got).max()))
    return worst
