"""SHAP attributions on a real ONNX model that provably ignores one column, and on functions
whose Shapley values are known in closed form."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from assay.compression.export import export_onnx
from assay.modeling.encoder import EncoderConfig, RecordClassifier
from assay.modeling.tokenizer import RecordTokenizer
from assay.responsible.explain import (
    dependence_plot,
    example_explanations,
    global_importance,
    importance_plot,
    shapley_values,
)
from assay.serving.scorer import OnnxScorer
from tests.conftest import mixed_rows

FEATURES = ["x", "colour", "note"]
IGNORED = "colour"


@pytest.fixture
def scorer(tmp_path, mixed_spec) -> OnnxScorer:
    """A randomly initialised classifier, exported to ONNX, whose output cannot depend on
    `colour`: every colour token (each value, [UNK] and [NA]) embeds to the same vector, and a
    categorical cell reaches the network only through its token (no value feature, fixed
    position). The categorical column is the cleanest to silence: its tokens are whole cell
    tokens named "colour=...", while text shares word pieces with nothing to tell them apart.

    BERT's initial weights (std 0.02) leave a random network's output almost constant (spread
    ~2e-4); ten times that scale gives probabilities spread around 0.5, so the attributions of
    the columns it does read are far above float32 noise."""
    train = mixed_rows(200, 0)
    tokenizer = RecordTokenizer.fit(train, mixed_spec)
    config = EncoderConfig.from_spec(mixed_spec.model, tokenizer.vocab_size, tokenizer.length)
    torch.manual_seed(0)
    model = RecordClassifier(config)
    ids = [i for t, i in tokenizer.cells.get_vocab().items() if t.startswith(f"{IGNORED}=")]
    assert len(ids) == 5  # [UNK], [NA], blue, green, red
    with torch.no_grad():
        for weight in model.encoder.bert.parameters():
            if weight.dim() == 2:
                weight.mul_(10.0)
        embedding = model.encoder.bert.embeddings.word_embeddings.weight
        embedding[ids] = embedding[ids[0]].clone()
    path = export_onnx(model, tokenizer.encode(train), tmp_path / "model.onnx")
    return OnnxScorer.load(path, tokenizer.save(tmp_path / "tokenizer"), threads=1)


@pytest.fixture
def frame() -> pd.DataFrame:
    """Scoring rows with a missing cell in each column and an unseen colour, so every kind of
    token (value, [NA], [UNK], empty text) is on the way in."""
    rows = mixed_rows(40, 1).drop(columns=["y"])
    rows.loc[0, "colour"] = pd.NA
    rows.loc[1, "colour"] = "purple"
    rows.loc[2, "x"] = np.nan
    rows.loc[3, "note"] = pd.NA
    return rows.set_axis(range(100, 140))  # an index that is not 0..n-1


@pytest.fixture
def background() -> pd.DataFrame:
    return mixed_rows(30, 2).drop(columns=["y"])


def test_an_ignored_column_gets_zero_and_values_add_up_to_the_prediction(scorer, frame, background):
    shapley = shapley_values(scorer.predict_proba, frame, background, FEATURES, seed=0)
    values = shapley.values

    assert list(values.columns) == FEATURES and values.index.equals(frame.index)
    assert values[IGNORED].abs().max() < 1e-6
    assert values.drop(columns=IGNORED).abs().to_numpy().max() > 1e-3
    # additivity: base value + the row's values = the model's probability for the row
    np.testing.assert_allclose(shapley.predictions, scorer.predict_proba(frame), atol=1e-5)
    assert shapley.base == pytest.approx(scorer.predict_proba(background).mean(), abs=1e-5)
    importance = global_importance(values)
    assert importance.index[-1] == IGNORED and importance.is_monotonic_decreasing


def _additive(frame: pd.DataFrame) -> np.ndarray:
    """0.3 x + 0.2 [colour = red] + 0.1 [note missing]: Shapley values known in closed form."""
    red = (frame["colour"] == "red").fillna(False).to_numpy(dtype=float)
    return 0.3 * frame["x"].fillna(0).to_numpy() + 0.2 * red + 0.1 * frame["note"].isna()


def test_values_are_interventional_shapley_values(frame, background):
    """For an additive model a feature's value is its term minus the term's background mean,
    whatever the permutations drawn."""
    shapley = shapley_values(_additive, frame, background, FEATURES, permutations=3, seed=5)
    x = frame["x"].fillna(0)
    expected_x = 0.3 * (x - background["x"].fillna(0).mean())
    np.testing.assert_allclose(shapley.values["x"], expected_x, atol=1e-12)
    red = (frame["colour"] == "red").fillna(False).astype(float)
    background_red = (background["colour"] == "red").fillna(False).mean()
    np.testing.assert_allclose(shapley.values["colour"], 0.2 * (red - background_red), atol=1e-12)


def test_a_value_rarely_away_from_zero_gets_little_where_it_is_zero():
    """The capital_gain case: zero in most rows; interventional SHAP leaves the zero rows near
    0 (occlusion made the column look the most important everywhere)."""
    rng = np.random.default_rng(0)
    gain = np.where(rng.random(600) < 0.08, rng.uniform(5001, 20000, 600), 0.0)
    rows = pd.DataFrame({"gain": gain, "age": rng.uniform(20, 70, 600)})

    def model(f: pd.DataFrame) -> np.ndarray:
        return 1 / (1 + np.exp(-(0.0004 * f["gain"].to_numpy() + 0.03 * (f["age"] - 45))))

    values = shapley_values(model, rows[:300], rows[300:350], ["gain", "age"], seed=1).values
    zero = rows["gain"][:300] == 0
    assert values["gain"][zero].abs().mean() < 0.2 * values["gain"][~zero].abs().mean()


def test_examples_are_the_extremes_then_the_most_uncertain(scorer, frame, background):
    attributions = shapley_values(scorer.predict_proba, frame, background, FEATURES).values
    p = scorer.predict_proba(frame)

    examples = example_explanations(frame, attributions, p, rows=3, top=2)

    assert json.loads(json.dumps(examples)) == examples
    extremes = [int(np.argmax(p)), int(np.argmin(p))]
    uncertain = np.abs(p - 0.5)
    uncertain[extremes] = np.inf
    expected = frame.index[[*extremes, int(np.argmin(uncertain))]].tolist()
    assert [e["row"] for e in examples] == expected
    assert examples[0]["probability"] == pytest.approx(p.max())
    assert all(len(e["features"]) == 2 for e in examples)
    first = examples[0]["features"][0]
    assert first["attribution"] == attributions.loc[examples[0]["row"], first["feature"]]
    assert len(example_explanations(frame, attributions, p, rows=5, top=3)[4]["features"]) == 3


def test_importance_and_dependence_plots_write_pngs(tmp_path, frame, background):
    importance = pd.Series({"x": 0.2, "note": 0.05, "colour": 0.0})
    values = shapley_values(_additive, frame, background, FEATURES).values

    paths = [
        importance_plot(importance, tmp_path / "plots" / "importance.png", top=2),
        dependence_plot(frame, values, ["x", "colour"], tmp_path / "plots" / "dependence.png"),
    ]

    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in paths)


def test_shapley_values_name_a_column_the_rows_lack():
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(KeyError, match="'nope'"):
        shapley_values(lambda f: np.zeros(len(f)), frame, frame, ["x", "nope"])


def test_shapley_values_reject_a_scorer_that_returns_both_classes():
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"returned shape \(\d+, 2\) for \d+ rows"):
        shapley_values(lambda f: np.zeros((len(f), 2)), frame, frame, ["x"])


def test_examples_reject_attributions_of_other_rows():
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    attributions = pd.DataFrame({"x": [0.1]}, index=[0])
    with pytest.raises(ValueError, match="same rows"):
        example_explanations(frame, attributions, np.array([0.3, 0.6]))
