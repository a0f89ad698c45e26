"""The gradient-boosting baseline every transformer model is judged against.

scikit-learn's HistGradientBoosting with native categorical splits: categories are fixed on
the training rows (unseen values become missing). Text columns become TF-IDF weights of their
most frequent words and word pairs (fit on the training rows), so on a text task the baseline
is a real bag-of-words model and the quality gate compares the transformer with something.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer

from assay.config import Spec
from assay.data.labels import labels

# HistGradientBoosting bins a categorical feature into at most 255 values (one kept for missing).
_MAX_CATEGORIES = 254
# Words and word pairs kept per text column: enough for a bag-of-words baseline, few enough that
# the booster's dense input stays small (256 floats per row per column).
_TEXT_TERMS = 256


@dataclass
class BaselineModel:
    """A fitted booster plus the category vocabularies it was fitted with."""

    estimator: HistGradientBoostingClassifier
    numeric: list[str]
    categories: dict[str, list[str]]
    text: dict[str, TfidfVectorizer]

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model input: numbers as float, categoricals with the training vocabulary, text as
        TF-IDF weights."""
        out = {c: frame[c].astype("float64") for c in self.numeric}
        for name, vocab in self.categories.items():
            out[name] = pd.Categorical(frame[name].astype("object"), categories=vocab)
        for name, vectorizer in self.text.items():
            weights = vectorizer.transform(_documents(frame[name])).toarray()
            out.update(
                {f"{name}:{term}": weights[:, i] for i, term in enumerate(_terms(vectorizer))}
            )
        return pd.DataFrame(out, index=frame.index)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of the positive class, one per row."""
        return self.estimator.predict_proba(self.features(frame))[:, 1]

    def save(self, folder: Path) -> Path:
        """skops (no pickle) for the booster, JSON for the vocabularies."""
        folder.mkdir(parents=True, exist_ok=True)
        skops.io.dump(self.estimator, folder / "baseline.skops")
        if self.text:
            skops.io.dump(self.text, folder / "baseline_text.skops")
        vocab = {"numeric": self.numeric, "categories": self.categories, "text": list(self.text)}
        (folder / "baseline_features.json").write_text(json.dumps(vocab, indent=2))
        return folder


def _documents(column: pd.Series) -> list[str]:
    return column.astype("string").fillna("").tolist()


def _terms(vectorizer: TfidfVectorizer) -> list[str]:
    return list(vectorizer.get_feature_names_out())


def _fit_text(train: pd.DataFrame, spec: Spec) -> dict[str, TfidfVectorizer]:
    """One TF-IDF vocabulary per text column; a column with no words at all is left out."""
    fitted = {}
    for name in spec.columns_of_type("text"):
        vectorizer = TfidfVectorizer(
            max_features=_TEXT_TERMS, ngram_range=(1, 2), sublinear_tf=True, dtype=np.float64
        )
        try:
            vectorizer.fit(_documents(train[name]))
        except ValueError:  # "empty vocabulary": nothing but stop words or blanks
            continue
        fitted[name] = vectorizer
    return fitted


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
        text=_fit_text(train, spec),
    )
    model.estimator.fit(
        model.features(train),
        labels(train, spec),
        X_val=model.features(valid),
        y_val=labels(valid, spec),
    )
    return model
