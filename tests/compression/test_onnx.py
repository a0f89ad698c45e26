"""ONNX export parity, int8 quantization, and scoring without torch, on a tiny model."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest

from assay.compression.export import max_logit_difference
from assay.compression.quantize import quantize
from assay.modeling.encoder import predict_proba
from assay.serving.scorer import OnnxScorer
from tests.conftest import mixed_rows


def test_fp32_onnx_matches_torch(exported):
    model, _, path, tokenizer, test = exported
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["ids", "values", "numeric", "attention"]
    batch_dim = graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param == "batch", "the batch axis is dynamic"
    assert max_logit_difference(model, path, tokenizer.encode(test)) <= 1e-4


@pytest.mark.parametrize(
    ("method", "int8_op"), [("dynamic", "MatMulInteger"), ("static", "QuantizeLinear")]
)
def test_int8_model_is_quantized_and_agrees(exported, tmp_path, method, int8_op):
    model, tokenizer_dir, path, tokenizer, test = exported
    calibration = tokenizer.encode(mixed_rows(200, 5)) if method == "static" else None
    int8 = quantize(path, tmp_path / f"{method}.onnx", method=method, calibration=calibration)
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert int8_op in ops
    assert not (tmp_path / "model.prep.onnx").exists()
    expected = predict_proba(model, tokenizer.encode(test)).numpy()
    scored = OnnxScorer.load(int8, tokenizer_dir).predict_proba(test)
    assert np.mean((scored >= 0.5) == (expected >= 0.5)) >= 0.95


def test_static_quantization_needs_calibration_rows(exported, tmp_path):
    with pytest.raises(ValueError, match="calibration rows"):
        quantize(exported[2], tmp_path / "s.onnx", method="static")


def test_int8_model_scores_without_importing_torch(exported, tmp_path):
    _, tokenizer_dir, path, _, test = exported
    int8 = quantize(path, tmp_path / "int8.onnx")
    test.drop(columns=["y"]).to_parquet(tmp_path / "rows.parquet")
    script = textwrap.dedent(
        f"""
        import sys
        import pandas as pd
        from pathlib import Path
        from assay.serving.scorer import OnnxScorer
        scorer = OnnxScorer.load(Path({str(int8)!r}), Path({str(tokenizer_dir)!r}), threads=1)
        p = scorer.predict_proba(pd.read_parquet({str(tmp_path / "rows.parquet")!r}))
        assert len(p) == 400 and ((p >= 0) & (p <= 1)).all()
        assert "torch" not in sys.modules, sorted(m for m in sys.modules if "torch" in m)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
