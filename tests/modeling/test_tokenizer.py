"""The record tokenizer's ids are the vocabulary's ids of the "col=value" and "col#bK" tokens,
whatever the cells hold: unseen values, missing ones, numbers in a categorical column, a
column name with "=" in it, a value that spells a special token."""

from __future__ import annotations

import numpy as np
import pandas as pd

from assay.config import Spec
from assay.modeling.tokenizer import CLS, RecordTokenizer


def _spec() -> Spec:
    return Spec.model_validate(
        {
            "name": "tokens",
            "columns": {
                "colour": {"type": "categorical"},
                "a=b": {"type": "categorical"},
                "size": {"type": "numeric"},
            },
            "label": {"column": "y", "positive": "1", "negative": "0"},
            "split": {"rule": "random"},
            "expectations": "suite.json",
            "model": {"numeric_bins": 4},
        }
    )


def _reference_ids(tokenizer: RecordTokenizer, frame: pd.DataFrame) -> np.ndarray:
    """Token strings through the WordLevel tokenizer, as the ids are defined."""
    vocab = tokenizer.cells.get_vocab()
    rows = []
    for _, row in frame.iterrows():
        tokens = [CLS]
        for col in tokenizer.categorical:
            value = row[col]
            token = f"{col}=[NA]" if pd.isna(value) else f"{col}={value}"
            tokens.append(token if token in vocab else f"{col}=[UNK]")
        for col in tokenizer.numeric:
            x = row[col]
            b = np.searchsorted(tokenizer.edges[col], x, side="right")
            tokens.append(f"{col}#[NA]" if pd.isna(x) else f"{col}#b{b}")
        rows.append(tokenizer.cells.encode(tokens, is_pretokenized=True).ids)
    return np.array(rows, dtype=np.int64)


def test_ids_are_the_vocabulary_ids_of_the_cell_tokens():
    train = pd.DataFrame(
        {
            "colour": ["red", "blue", "green", "red", None] * 4,
            "a=b": ["x", "c=d", "7", "x", "y"] * 4,
            "size": [1.0, 2.5, np.nan, 4.0, 10.0] * 4,
            "y": ["1", "0"] * 10,
        }
    )
    tokenizer = RecordTokenizer.fit(train, _spec())
    rows = pd.DataFrame(
        {
            "colour": ["red", "mauve", None, "[UNK]", "blue", "[NA]"],
            "a=b": ["c=d", 7, "x", None, "zzz", "y"],
            "size": [np.nan, -5.0, 2.5, 100.0, 3.0, 4.0],
        },
        dtype=object,
    ).astype({"size": "float64"})
    encoded = tokenizer.encode(rows)
    cells = encoded.ids[:, : 1 + len(tokenizer.cell_columns)]
    np.testing.assert_array_equal(cells, _reference_ids(tokenizer, rows))
    assert len(set(cells[:, 1])) == 4  # red, unseen, missing, "[UNK]" as unseen, ...


def test_a_column_of_only_missing_cells_encodes():
    train = pd.DataFrame({"colour": ["red", "blue"], "a=b": ["x", "y"], "size": [1.0, 2.0]})
    tokenizer = RecordTokenizer.fit(train, _spec())
    rows = pd.DataFrame({"colour": [None, None], "a=b": [None, None], "size": [np.nan, np.nan]})
    np.testing.assert_array_equal(
        tokenizer.encode(rows).ids[:, :4], _reference_ids(tokenizer, rows)
    )
