"""Occlusion attributions on a real ONNX model that provably ignores one column."""

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
    example_explanations,
    global_importance,
    importance_plot,
    occlusion,
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


def test_an_ignored_column_gets_no_attribution_and_ranks_last(scorer, frame):
    attributions = occlusion(scorer.predict_proba, frame, FEATURES)

    assert list(attributions.columns) == FEATURES
    assert attributions.index.equals(frame.index)
    assert attributions[IGNORED].abs().max() < 1e-6
    assert attributions.drop(columns=IGNORED).abs().to_numpy().max() > 1e-3
    assert attributions.loc[102, "x"] == attributions.loc[103, "note"] == 0.0  # already missing
    importance = global_importance(attributions)
    assert importance.index[-1] == IGNORED
    assert importance.is_monotonic_decreasing


def test_attribution_is_the_drop_when_the_cell_goes_missing(scorer, frame):
    attributions = occlusion(scorer.predict_proba, frame, FEATURES)

    for position in (4, 17):
        row = frame.iloc[[position]]
        base = scorer.predict_proba(row)[0]
        no_x = scorer.predict_proba(row.assign(x=np.nan))[0]
        no_note = scorer.predict_proba(row.assign(note=pd.array([pd.NA], dtype="string")))[0]
        assert attributions["x"].iloc[position] == pytest.approx(base - no_x, abs=1e-6)
        assert attributions["note"].iloc[position] == pytest.approx(base - no_note, abs=1e-6)


def test_examples_are_the_extremes_then_the_most_uncertain(scorer, frame):
    attributions = occlusion(scorer.predict_proba, frame, FEATURES)
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


def test_importance_plot_writes_a_png(tmp_path):
    importance = pd.Series({"x": 0.2, "note": 0.05, "colour": 0.0})

    path = importance_plot(importance, tmp_path / "plots" / "importance.png", top=2)

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_occlusion_names_a_column_the_frame_lacks():
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(KeyError, match="'nope'"):
        occlusion(lambda f: np.zeros(len(f)), frame, ["x", "nope"])


def test_occlusion_rejects_a_scorer_that_returns_both_classes():
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"shape \(2, 2\) for 2 rows"):
        occlusion(lambda f: np.zeros((len(f), 2)), frame, ["x"])


def test_examples_reject_attributions_of_other_rows():
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    attributions = pd.DataFrame({"x": [0.1]}, index=[0])
    with pytest.raises(ValueError, match="same rows"):
        example_explanations(frame, attributions, np.array([0.3, 0.6]))
