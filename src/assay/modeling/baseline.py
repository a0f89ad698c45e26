"""The gradient-boosting baseline every transformer model is judged against.

scikit-learn's HistGradientBoosting with native categorical splits: categories are fixed on
the training rows (unseen values become missing), text columns are left to the transformer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io
from sklearn.ensemble import HistGradientBoostingClassifier

from assay.config import Spec
from assay.data.labels import labels

# HistGradientBoosting bins a categorical feature into at most 255 values (one kept for missing).
_MAX_CATEGORIES = 254


@dataclass
class BaselineModel:
    """A fitted booster plus the category vocabularies it was fitted with."""

    estimator: HistGradientBoostingClassifier
    numeric: list[str]
    categories: dict[str, list[str]]

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model input: numbers as float, categoricals with the training vocabulary."""
        out = {c: frame[c].astype("float64") for c in self.numeric}
        for name, vocab in self.categories.items():
            out[name] = pd.Categorical(frame[name].astype("object"), categories=vocab)
        return pd.DataFrame(out, index=frame.index)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of the positive class, one per row."""
        return self.estimator.predict_proba(self.features(frame))[:, 1]

    def save(self, folder: Path) -> Path:
        """skops (no pickle) for the booster, JSON for the vocabularies."""
        folder.mkdir(parents=True, exist_ok=True)
        skops.io.dump(self.estimator, folder / "baseline.skops")
        vocab = {"numeric": self.numeric, "categories": self.categories}
        (folder / "baseline_features.json").write_text(json.dumps(vocab, indent=2))
        return folder


def fit_baseline(train: pd.DataFrame, valid: pd.DataFrame, spec: Spec) -> BaselineModel:
    """Fit on train, early-stop on valid (the same rows the transformer uses to stop)."""
    settings = spec.baseline
    categories = {
        name: sorted(train[name].value_counts().index[:_MAX_CATEGORIES].astype(str))
        for name in spec.columns_of_type("categorical")
    }
    model = BaselineModel(
        estimator=HistGradientBoostingClassifier(
            learning_rate=settings.learning_rate,
            max_iter=settings.max_iter,
            max_leaf_nodes=settings.max_leaf_nodes,
            l2_regularization=settings.l2_regularization,
            early_stopping=True,
            n_iter_no_change=settings.early_stopping_rounds,
            categorical_features="from_dtype",
            random_state=settings.seed,
        ),
        numeric=spec.columns_of_type("numeric"),
        categories=categories,
    )
    model.estimator.fit(
        model.features(train),
        labels(train, spec),
        X_val=model.features(valid),
        y_val=labels(valid, spec),
    )
    return model
