"""Score a data file with a deployed int8 model, chunk by chunk, without torch.

A deployable model folder holds what scoring needs and nothing more: the resolved spec (how
files are read, which label value is positive), the record tokenizer, the int8 ONNX model and,
when the responsible stage made the folder, the decision policy (calibration temperature,
fairness mitigation rules, conformal review threshold; see assay.serving.policy). All of it is
JSON or ONNX: loading never unpickles. A registered package also carries its manifest
(assay.serving.manifest), checked before anything is read.
Files of any size are read, scored and written a chunk at a time, so memory stays bounded, and
the output appears at its name only when complete.

A row's probability depends on that row alone only when the model's int8 scales are static
(calibrated): a dynamically quantized model picks activation scales per onnxruntime run, so
its scores move slightly with the rows scored alongside (and so with the chunk size).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from assay.config import Spec
from assay.data.atomic import write_atomic
from assay.data.reader import read_chunks
from assay.errors import AssayError, ReadError
from assay.serving.layout import (
    MODEL_FILE,
    SPEC_FILE,
    TOKENIZER_DIR,
    ModelFolderError,
    check_model_folder,
)
from assay.serving.manifest import has_manifest, verify_package
from assay.serving.policy import DecisionPolicy
from assay.serving.scorer import OnnxScorer

DEFAULT_CHUNK_ROWS = 50_000
# onnxruntime's memory grows with the rows in one run (a 50k-row run of an Adult-sized model
# peaked near 4 GB; 1024-row runs stay near 300 MB, and are no slower).
SCORE_BATCH_ROWS = 1024
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl"}


@dataclass(frozen=True)
class Predictor:
    """A deployed model: the spec it was trained on, its torch-free scorer and its policy."""

    spec: Spec
    scorer: OnnxScorer
    policy: DecisionPolicy

    @classmethod
    def load(cls, folder: Path, threads: int = 0) -> Predictor:
        """A folder that carries a manifest (every registered package does) is checked
        against it first: a changed, missing or planted file refuses the whole folder."""
        check_model_folder(folder)
        if has_manifest(folder):
            verify_package(folder, None, f"model folder {folder}")
        return cls(
            _load_spec(folder / SPEC_FILE),
            OnnxScorer.load(folder / MODEL_FILE, folder / TOKENIZER_DIR, threads),
            DecisionPolicy.load(folder),
        )

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The id (when the spec has one), calibrated P(positive), the label decided by the
        policy and, with a conformal policy, whether the row needs human review."""
        probability = self.probabilities(rows)
        label = self.spec.label
        out = {self.spec.id_column: rows[self.spec.id_column]} if self.spec.id_column else {}
        out["probability"] = probability
        columns = self.spec.group_columns
        same = list(rows.columns) == columns and isinstance(rows.index, pd.RangeIndex)
        features = rows if same else rows[columns].reset_index(drop=True)
        decided = self.policy.decisions(probability, features)
        out["prediction"] = np.where(decided == 1, label.positive, label.negative)
        review = self.policy.review(probability, features)
        if review is not None:
            out["review"] = review
        return pd.DataFrame(out).reset_index(drop=True)

    def probabilities(self, rows: pd.DataFrame) -> np.ndarray:
        """Calibrated P(positive) per row: encoded at once, SCORE_BATCH_ROWS rows per
        onnxruntime run."""
        encoded = self.scorer.tokenizer.encode(rows)
        runs = range(0, len(rows), SCORE_BATCH_ROWS)
        logits = [self.scorer.run(encoded.take(slice(i, i + SCORE_BATCH_ROWS))) for i in runs]
        stacked = np.concatenate(logits) if logits else np.empty((0, 2), dtype=np.float32)
        return self.policy.probabilities(stacked).astype(np.float64)

    def predict_chunks(self, source: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
        """Predictions for `source`, one frame per chunk of input rows, in file order."""
        try:
            for rows in read_chunks(source, label_optional(self.spec), chunk_rows):
                yield self.predict(rows)
        except ReadError as exc:
            raise ReadError(f"{source}: {exc}") from None


def predict_file(
    model: Path, source: Path, out: Path | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> int:
    """Score every row of `source` into `out` (format by suffix), or as CSV to stdout without
    it; return the number of rows scored. The arguments and the model are checked first, so
    a typo fails at once, not after minutes of scoring."""
    fmt = output_format(out) if out is not None else "csv"
    if chunk_rows < 1:
        raise AssayError(f"chunk rows must be at least 1, not {chunk_rows}")
    if not source.is_file():
        raise ReadError(f"{source}: input file not found")
    chunks = Predictor.load(model).predict_chunks(source, chunk_rows)
    if out is None:
        return _write_text(chunks, sys.stdout, fmt)
    written = 0

    def write(temp: Path) -> None:
        nonlocal written
        written = _write_file(chunks, temp, fmt)

    write_atomic(out, write)
    return written


def output_format(out: Path) -> str:
    try:
        return OUTPUT_FORMATS[out.suffix.lower()]
    except KeyError:
        known = ", ".join(OUTPUT_FORMATS)
        raise AssayError(f"{out}: unknown output format (name it {known})") from None


def _load_spec(path: Path) -> Spec:
    try:
        return Spec.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ModelFolderError(f"{path}: not a valid spec: {where}: {first['msg']}") from None


def label_optional(spec: Spec) -> Spec:
    """Rows to score seldom carry the label; when they do, it is read but not used."""
    label = spec.label.model_copy(update={"allow_unlabelled_batches": True})
    return spec.model_copy(update={"label": label})


def _write_file(chunks: Iterable[pd.DataFrame], path: Path, fmt: str) -> int:
    if fmt == "parquet":
        return _write_parquet(chunks, path)
    with path.open("w", encoding="utf-8", newline="") as stream:
        return _write_text(chunks, stream, fmt)


def _write_text(chunks: Iterable[pd.DataFrame], stream: TextIO, fmt: str) -> int:
    """CSV (one header) or JSON lines, appended chunk by chunk."""
    rows = 0
    for frame in chunks:
        if fmt == "csv":
            frame.to_csv(stream, header=rows == 0, index=False, lineterminator="\n")
        else:
            stream.write(frame.to_json(orient="records", lines=True))
        rows += len(frame)
    return rows


def _write_parquet(chunks: Iterable[pd.DataFrame], path: Path) -> int:
    """One row group per chunk; the first chunk fixes the schema."""
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for frame in chunks:
            schema = writer.schema if writer is not None else None
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            rows += len(frame)
    finally:
        if writer is not None:
            writer.close()
    return rows
