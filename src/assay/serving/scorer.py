"""Score frames with an exported model using only onnxruntime, numpy, pandas and tokenizers:
what a device or a service needs, without torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

from assay.modeling.tokenizer import Encoded, RecordTokenizer
from assay.serving.policy import apply_temperature
from assay.serving.session import session


@dataclass
class OnnxScorer:
    """A tokenizer folder and an ONNX file, ready to give positive-class probabilities."""

    tokenizer: RecordTokenizer
    session: ort.InferenceSession

    @classmethod
    def load(cls, model: Path, tokenizer: Path, threads: int = 0) -> OnnxScorer:
        """threads=0 lets onnxruntime use every core."""
        return cls(RecordTokenizer.load(tokenizer), session(model, threads))

    def logits(self, frame: pd.DataFrame) -> np.ndarray:
        """Two-class logits [rows, 2]."""
        return self.run(self.tokenizer.encode(frame))

    def run(self, encoded: Encoded) -> np.ndarray:
        """Logits of rows already encoded: one onnxruntime run."""
        return self.session.run(["logits"], encoded.feeds())[0]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return apply_temperature(self.logits(frame), 1.0)
