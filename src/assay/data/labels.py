"""The label column as the 0/1 vector every metric and loss reads."""

from __future__ import annotations

import numpy as np
import pandas as pd

from assay.config import Spec


def labels(frame: pd.DataFrame, spec: Spec) -> np.ndarray:
    """1 for the positive class, 0 otherwise."""
    return (frame[spec.label.column] == spec.label.positive).to_numpy(dtype=np.int64)
