"""A tiny trained classifier exported to ONNX, shared by the compression tests."""

from __future__ import annotations

import pytest

from assay.compression.export import export_onnx
from tests.conftest import mixed_rows, tiny_classifier


@pytest.fixture
def exported(tmp_path, mixed_spec):
    """A small fine-tuned classifier, its tokenizer folder and its fp32 ONNX file."""
    test = mixed_rows(400, 1)
    model, tokenizer, encoded = tiny_classifier(mixed_spec, mixed_rows(300, 0))
    path = export_onnx(model, encoded, tmp_path / "model.onnx")
    return model, tokenizer.save(tmp_path / "tokenizer"), path, tokenizer, test
