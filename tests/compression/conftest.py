"""A tiny trained classifier exported to ONNX, shared by the compression tests."""

from __future__ import annotations

import numpy as np
import pytest

from assay.compression.export import export_onnx
from assay.modeling.encoder import EncoderConfig
from assay.modeling.finetune import finetune
from assay.modeling.tokenizer import RecordTokenizer
from tests.conftest import mixed_rows


@pytest.fixture
def exported(tmp_path, mixed_spec):
    """A small fine-tuned classifier, its tokenizer folder and its fp32 ONNX file."""
    train, test = mixed_rows(300, 0), mixed_rows(400, 1)
    tokenizer = RecordTokenizer.fit(train, mixed_spec)
    config = EncoderConfig.from_spec(mixed_spec.model, tokenizer.vocab_size, tokenizer.length)
    y = (train["y"] == "yes").to_numpy(dtype=np.int64)
    settings = mixed_spec.finetune.model_copy(
        update={"method": "full", "epochs": 6, "learning_rate": 5e-3}
    )
    encoded = tokenizer.encode(train)
    model = finetune(encoded, y, encoded, y, config, settings, seed=0).model
    path = export_onnx(model, encoded, tmp_path / "model.onnx")
    return model, tokenizer.save(tmp_path / "tokenizer"), path, tokenizer, test
