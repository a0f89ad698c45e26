"""Record tokenizer: one row becomes a fixed-length token sequence for the encoder.

Layout: [CLS], one token per categorical or numeric column (in spec order), then a span of
subword tokens per text column. Position therefore says which column a token belongs to.
- categorical cell -> "col=value"; a value unseen in training -> "col=[UNK]"; missing -> "col=[NA]"
- numeric cell -> "col#bK", K its quantile bin (edges fit on training rows only), missing ->
  "col#[NA]"; the cell's rank in the training distribution travels beside the token as a float,
  so the encoder can keep the value, not just its bin
- text cell -> WordPiece subwords (vocabulary from training text), padded per column
Vocabularies are HF `tokenizers` models saved as tokenizer JSON; the same rows always give the
same ids.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from assay.config import Spec

PAD, CLS, MASK, UNK = "[PAD]", "[CLS]", "[MASK]", "[UNK]"
SPECIALS = (PAD, CLS, MASK, UNK)
_RANK_POINTS = 1001  # resolution of the numeric rank feature


ENCODE_ROWS = 50_000  # rows tokenized at once (see RecordTokenizer.encode)


@dataclass(frozen=True)
class Encoded:
    """Token ids plus the numeric rank feature, row-aligned with the frame encoded."""

    ids: np.ndarray  # int64 [rows, length]
    values: np.ndarray  # float32 [rows, length]: rank in [0, 1] at numeric cells, else 0
    numeric: np.ndarray  # float32 [rows, length]: 1 where `values` is meaningful
    attention: np.ndarray  # int64 [rows, length]: 0 at text padding

    def __len__(self) -> int:
        return len(self.ids)

    def feeds(self) -> dict[str, np.ndarray]:
        """Inputs by name, as the exported ONNX models take them."""
        return {
            "ids": self.ids,
            "values": self.values,
            "numeric": self.numeric,
            "attention": self.attention,
        }

    def take(self, index: np.ndarray) -> Encoded:
        return Encoded(
            self.ids[index], self.values[index], self.numeric[index], self.attention[index]
        )

    @classmethod
    def concatenate(cls, parts: list[Encoded]) -> Encoded:
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__)
        )


@dataclass
class RecordTokenizer:
    """Fitted vocabularies and numeric bins for one spec."""

    categorical: list[str]
    numeric: list[str]
    text: list[str]
    edges: dict[str, list[float]]  # inner bin edges per numeric column
    ranks: dict[str, list[float]]  # training quantiles per numeric column, for the rank feature
    cells: Tokenizer  # WordLevel over cell tokens and specials
    words: Tokenizer | None  # WordPiece for text columns; ids offset by the cell vocabulary
    text_max_tokens: int

    @property
    def cell_columns(self) -> list[str]:
        return self.categorical + self.numeric

    @property
    def length(self) -> int:
        return 1 + len(self.cell_columns) + self.text_max_tokens * len(self.text)

    @property
    def vocab_size(self) -> int:
        return self.cells.get_vocab_size() + (self.words.get_vocab_size() if self.words else 0)

    def token_id(self, token: str) -> int:
        found = self.cells.token_to_id(token)
        if found is None:
            raise KeyError(token)
        return found

    # -- fitting ---------------------------------------------------------------------------

    @classmethod
    def fit(cls, train: pd.DataFrame, spec: Spec) -> RecordTokenizer:
        """Learn vocabularies, bins and rank quantiles from training rows only."""
        categorical = spec.columns_of_type("categorical")
        numeric = spec.columns_of_type("numeric")
        text = spec.columns_of_type("text")
        tokens: list[str] = list(SPECIALS)
        for col in categorical:
            seen = sorted(train[col].dropna().astype(str).unique())
            tokens += [f"{col}=[UNK]", f"{col}=[NA]", *(f"{col}={v}" for v in seen)]
        edges, ranks = {}, {}
        for col in numeric:
            values = train[col].dropna().to_numpy(dtype=np.float64)
            if values.size == 0:
                values = np.zeros(1)
            cuts = np.unique(np.quantile(values, np.linspace(0, 1, spec.model.numeric_bins + 1)))
            edges[col] = cuts[1:-1].tolist()
            ranks[col] = np.unique(np.quantile(values, np.linspace(0, 1, _RANK_POINTS))).tolist()
            tokens += [f"{col}#[NA]", *(f"{col}#b{k}" for k in range(len(edges[col]) + 1))]
        cells = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token=UNK))
        words = _fit_words(train, text, spec.model.text_vocab_size) if text else None
        return cls(
            categorical, numeric, text, edges, ranks, cells, words, spec.model.text_max_tokens
        )

    # -- encoding --------------------------------------------------------------------------

    def encode(self, frame: pd.DataFrame) -> Encoded:
        """Encode ENCODE_ROWS rows at a time: a chunk's per-cell strings and tokenizer objects
        (a few KB per row) are freed before the next, so memory grows only by the arrays."""
        if len(frame) <= ENCODE_ROWS:
            return self._encode(frame)
        chunks = range(0, len(frame), ENCODE_ROWS)
        return Encoded.concatenate([self._encode(frame.iloc[i : i + ENCODE_ROWS]) for i in chunks])

    @cached_property
    def _vocab(self) -> dict[str, int]:
        """The cell vocabulary, token -> id, read once (the tokenizer copies it per call)."""
        return self.cells.get_vocab()

    @cached_property
    def _categories(self) -> dict[str, dict[str, int]]:
        """Per categorical column, value -> id of "col=value": the WordLevel lookup of the
        token, done per column as one vectorized map."""
        prefixes = {col: f"{col}=" for col in self.categorical}
        return {
            col: {t[len(p) :]: i for t, i in self._vocab.items() if t.startswith(p)}
            for col, p in prefixes.items()
        }

    @cached_property
    def _numeric(self) -> dict[str, tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]]:
        """Per numeric column, as arrays: the bin edges, each bin's token id, the missing
        token's id, the rank quantiles and their levels in [0, 1]."""
        out = {}
        for col in self.numeric:
            edges, ranks = np.asarray(self.edges[col]), np.asarray(self.ranks[col])
            ids = np.array([self._vocab[f"{col}#b{k}"] for k in range(len(edges) + 1)])
            levels = np.linspace(0, 1, len(ranks))
            out[col] = (edges, ids, self._vocab[f"{col}#[NA]"], ranks, levels)
        return out

    def _encode(self, frame: pd.DataFrame) -> Encoded:
        """Cell tokens are looked up in the vocabulary column by column, each distinct value
        once: the same ids as tokenizing the "col=value" strings, without building them."""
        rows, vocab = len(frame), self._vocab
        ids = np.empty((rows, 1 + len(self.cell_columns)), dtype=np.int64)
        ids[:, 0] = vocab[CLS]
        values = np.zeros((rows, self.length), dtype=np.float32)
        numeric = np.zeros((rows, self.length), dtype=np.float32)
        cells = frame[self.categorical].to_numpy(dtype=object)  # one call, not one per column
        for j, col in enumerate(self.categorical, start=1):
            codes, seen = pd.factorize(cells[:, j - 1])  # missing (None, NaN, NA): code -1
            known, unknown = self._categories[col], vocab[f"{col}=[UNK]"]
            lookup = np.array([known.get(str(v), unknown) for v in seen] or [0], dtype=np.int64)
            ids[:, j] = np.where(codes >= 0, lookup[np.maximum(codes, 0)], vocab[f"{col}=[NA]"])
        numbers = frame[self.numeric].to_numpy(dtype=np.float64, na_value=np.nan)
        for k, col in enumerate(self.numeric):
            j, x = 1 + len(self.categorical) + k, numbers[:, k]
            present = ~np.isnan(x)
            edges, bin_ids, na_id, ranks, levels = self._numeric[col]
            ids[:, j] = np.where(
                present, bin_ids[np.searchsorted(edges, np.nan_to_num(x), side="right")], na_id
            )
            rank = np.interp(np.nan_to_num(x), ranks, levels) if len(ranks) > 1 else 0.5
            values[:, j] = np.where(present, rank, 0.0)
            numeric[:, j] = present
        attention = np.ones((rows, self.length), dtype=np.int64)
        if self.words is not None:
            ids, attention = self._append_text(frame, ids, attention)
        return Encoded(ids.reshape(rows, self.length), values, numeric, attention)

    def _append_text(self, frame: pd.DataFrame, ids: np.ndarray, attention: np.ndarray):
        offset = self.cells.get_vocab_size()
        start = 1 + len(self.cell_columns)
        spans = []
        for k, col in enumerate(self.text):
            texts = frame[col].fillna("").astype(str).tolist()
            span = np.zeros((len(frame), self.text_max_tokens), dtype=np.int64)
            for i, enc in enumerate(self.words.encode_batch(texts)):
                kept = enc.ids[: self.text_max_tokens]
                span[i, : len(kept)] = np.asarray(kept) + offset
                attention[
                    i,
                    start + k * self.text_max_tokens + len(kept) : start
                    + (k + 1) * self.text_max_tokens,
                ] = 0
            spans.append(span)
        return np.concatenate([ids, *spans], axis=1), attention

    # -- persistence -----------------------------------------------------------------------

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        self.cells.save(str(folder / "cells.tokenizer.json"))
        if self.words is not None:
            self.words.save(str(folder / "words.tokenizer.json"))
        meta = {
            "categorical": self.categorical,
            "numeric": self.numeric,
            "text": self.text,
            "edges": self.edges,
            "ranks": self.ranks,
            "text_max_tokens": self.text_max_tokens,
        }
        (folder / "record_tokenizer.json").write_text(json.dumps(meta))
        return folder

    @classmethod
    def load(cls, folder: Path) -> RecordTokenizer:
        meta = json.loads((folder / "record_tokenizer.json").read_text())
        words = folder / "words.tokenizer.json"
        return cls(
            cells=Tokenizer.from_file(str(folder / "cells.tokenizer.json")),
            words=Tokenizer.from_file(str(words)) if words.is_file() else None,
            **meta,
        )


def _fit_words(train: pd.DataFrame, text: list[str], vocab_size: int) -> Tokenizer:
    """A WordPiece tokenizer whose vocabulary is chosen deterministically: every character
    seen (alone and as a "##" continuation) so any word can be spelled, then the most frequent
    whole words, ties broken alphabetically. (The `tokenizers` WordPiece trainer breaks
    frequency ties differently from run to run, and a run must be repeatable.)"""
    normalizer = normalizers.BertNormalizer(lowercase=True)
    splitter = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for col in text:
        for cell in train[col].dropna():
            pieces = splitter.pre_tokenize_str(normalizer.normalize_str(str(cell)))
            counts.update(word for word, _ in pieces)
    chars = sorted({c for word in counts for c in word})
    vocab = [PAD, UNK, *chars, *(f"##{c}" for c in chars)]
    room = max(0, vocab_size - len(vocab))
    frequent = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))[:room]
    words = Tokenizer(
        models.WordPiece({t: i for i, t in enumerate([*vocab, *frequent])}, unk_token=UNK)
    )
    words.normalizer = normalizer
    words.pre_tokenizer = splitter
    return words
