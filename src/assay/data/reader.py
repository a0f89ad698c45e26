"""Parse one data file into the spec's columns and types, or say in one line why not.

The bundled Adult files go through this same reader as any user file. Cells are read as text
first so that nothing is guessed: numeric columns are converted explicitly and a value that is
not a number is an error naming the column, not a silent NaN.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.io.common import get_handle, infer_compression

from assay.config import Spec
from assay.data.csv_lines import BadLines, CheckedRecords, header_names, unique_names
from assay.data.transform import RowCounts, to_batch
from assay.errors import ReadError

# Limits that turn hostile files into a clear ReadError instead of a stalled or OOM-killed
# ingest. Generous for real tables (Adult's longest line is ~150 characters).
MAX_COLUMNS = 4096  # fields per row
MAX_REASON_CHARS = 300  # a reason is one line a person reads, never a dump of the data

_PARQUET = {".parquet", ".pq"}
_JSONL = {".jsonl", ".ndjson", ".json"}
_COMPRESSION = {".gz", ".bz2", ".xz", ".zst", ".zip"}


def detect_format(path: Path, declared: str) -> str:
    """The file format: the spec's, or by suffix (a compression suffix is looked through)."""
    if declared != "auto":
        return declared
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in _COMPRESSION:
        suffixes.pop()
    last = suffixes[-1] if suffixes else ""
    if last in _PARQUET:
        return "parquet"
    if last in _JSONL:
        return "jsonl"
    return "csv"


def one_line(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """`text` as a single printable line of at most `limit` characters: a reason goes into
    reason.txt, logs and UI tables, where a newline or a megabyte of data would forge or bury
    the line after it."""
    head = text[: limit * 4]  # enough to fill the line after whitespace is squeezed
    flat = " ".join("".join(c if c.isprintable() else " " for c in head).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


@dataclass(frozen=True)
class ReadResult:
    """A file's batch, with what was left out on the way: rows the filter or the label rule
    dropped, and malformed records skipped (source.bad_lines: skip)."""

    frame: pd.DataFrame
    counts: RowCounts
    bad_lines: BadLines


def read_batch(path: str | Path, spec: Spec, *, name: str | None = None) -> ReadResult:
    """Read a file into a frame with the spec's batch columns (id, model inputs, fairness
    attributes, label) and dtypes.

    `name` is the file's own name when `path` reaches it another way (an open descriptor's
    /proc/self/fd path): format and compression go by it.

    Raises ReadError with a one-line reason for anything that stops parsing: an empty file,
    bytes that are not UTF-8, malformed CSV (beyond source.max_bad_lines when skipping),
    missing columns, values that are not numbers or datetimes, labels that are neither class,
    no rows left by the filter, or a file past the size limits (a line, a cell, the columns).
    """
    with _one_line_errors():
        path = _nonempty_file(path)
        raw, bad = _read_raw(path, spec, Path(name) if name else path)
        _within_bad_line_limit(bad, spec)
        if raw.empty:
            raise ReadError("file has no data rows")
        _reject_header_row(raw, spec)
        frame, counts = to_batch(raw, spec)
        if frame.empty:
            raise ReadError(f"no rows left of {len(raw):,}: {counts.describe()}")
        return ReadResult(frame, counts, bad)


def read_table(path: str | Path, spec: Spec, *, name: str | None = None) -> pd.DataFrame:
    """The batch frame of read_batch, for callers that keep no ingest record."""
    return read_batch(path, spec, name=name).frame


def read_chunks(path: str | Path, spec: Spec, rows: int) -> Iterator[pd.DataFrame]:
    """Read a file `rows` rows at a time, each chunk converted as read_table would, so a file
    of any size is read with bounded memory. Raises ReadError as read_table does; an error in
    a later chunk comes after the earlier chunks were yielded."""
    with _one_line_errors():
        path = _nonempty_file(path)
        seen = 0
        for raw in _raw_chunks(path, spec, rows):
            if len(raw):
                raw.index = pd.RangeIndex(seen, seen + len(raw))  # row positions in the file
                seen += len(raw)
                yield normalize(raw, spec)
        if not seen:
            raise ReadError("file has no data rows")


def _within_bad_line_limit(bad: BadLines, spec: Spec) -> None:
    """Skipping a few broken records keeps a file; skipping many would hide a wrong spec (a
    wrong delimiter breaks every line), so past the limit the whole file is refused."""
    if not bad:
        return
    limit = spec.source.max_bad_lines
    allowed = limit if limit >= 1 else limit * bad.records
    if len(bad) > allowed:
        raise ReadError(
            f"malformed CSV: {len(bad):,} of {bad.records:,} records have the wrong number of "
            f"fields (first at line {bad.starts[0]:,}), more than source.max_bad_lines "
            f"({limit:g})"
        )


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Every ReadError leaves the reader as one bounded line, whatever the file held."""
    try:
        yield
    except ReadError as exc:
        raise ReadError(one_line(str(exc))) from None


def _reject_header_row(raw: pd.DataFrame, spec: Spec) -> None:
    """A header line in a file the spec calls headerless would otherwise surface as a puzzling
    'not a number' error on its first row; say what it is."""
    if spec.source.header or raw.empty or spec.source.names is None:
        return
    first = [str(v).strip() for v in raw.iloc[0].tolist()]
    if first == [str(n) for n in spec.source.names][: len(first)]:
        raise ReadError("the first row is a header, but the spec says the file has none")


def _nonempty_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ReadError(f"{path.name!r}: not a file")
    if path.stat().st_size == 0:
        raise ReadError("file is empty (0 bytes)")
    return path


def _read_raw(path: Path, spec: Spec, named: Path) -> tuple[pd.DataFrame, BadLines]:
    fmt = detect_format(named, spec.source.format)
    compression = infer_compression(str(named), "infer")
    with _parse_errors(fmt):
        if fmt == "parquet":
            return _checked_shape(pd.read_parquet(path).reset_index(drop=True), fmt), BadLines()
        if fmt == "jsonl":
            raw = pd.read_json(
                path, lines=True, dtype=False, encoding="utf-8", compression=compression
            )
            return _checked_shape(raw, fmt), BadLines()
        names, drop = _names(path, spec, compression)
        with _csv_text(path, spec, compression, header=spec.source.header) as text:
            raw = pd.read_csv(text, **_csv_options(spec, names))
    return _checked_shape(raw.drop(columns=drop + _left_off(text, spec)), fmt), text.bad


def _names(path: Path, spec: Spec, compression: str | None) -> tuple[list[str] | None, list[str]]:
    """Column names for the parser, and the repeated copies to drop after parsing."""
    if not spec.source.header:
        return spec.source.names, []
    return _header(path, spec, compression)


def _checked_shape(raw: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """Refuse shapes that are no table of records: too many columns, or JSON lines that are
    arrays or plain values (pandas numbers those columns 0, 1, ... instead of failing)."""
    if raw.shape[1] > MAX_COLUMNS:
        raise ReadError(f"{raw.shape[1]:,} columns: more than the limit of {MAX_COLUMNS:,}")
    if fmt == "jsonl" and any(not isinstance(c, str) for c in raw.columns):
        raise ReadError("every JSON line must be one object (a record), not an array or a value")
    return raw


def _raw_chunks(path: Path, spec: Spec, rows: int) -> Iterator[pd.DataFrame]:
    """Unconverted frames of up to `rows` rows. Errors are translated around each pull, not
    around the yield, so the warning filter that _parse_errors sets never leaks to the caller."""
    fmt = detect_format(path, spec.source.format)
    with ExitStack() as stack:
        with _parse_errors(fmt):
            frames = stack.enter_context(_chunk_reader(path, spec, fmt, rows))
        while True:
            with _parse_errors(fmt):
                frame = next(frames, None)
            if frame is None:
                return
            yield _checked_shape(frame, fmt)


@contextmanager
def _chunk_reader(path: Path, spec: Spec, fmt: str, rows: int) -> Iterator[Iterator[pd.DataFrame]]:
    if fmt == "parquet":
        with pq.ParquetFile(path) as parquet:
            yield (batch.to_pandas() for batch in parquet.iter_batches(batch_size=rows))
    elif fmt == "jsonl":
        with pd.read_json(
            path, lines=True, dtype=False, encoding="utf-8", chunksize=rows
        ) as reader:
            yield reader
    else:
        names, drop = _names(path, spec, "infer")
        with (
            _csv_text(path, spec, "infer", header=spec.source.header) as text,
            pd.read_csv(text, chunksize=rows, **_csv_options(spec, names)) as reader,
        ):
            yield (chunk.drop(columns=drop + _left_off(text, spec)) for chunk in reader)


def _csv_options(spec: Spec, names: list[str] | None) -> dict[str, Any]:
    """Every cell as text, exactly as written; nothing inferred."""
    return {
        "index_col": False,
        "dtype": str,
        "keep_default_na": False,
        "header": 0 if spec.source.header else None,
        "names": names,
        "sep": spec.source.delimiter,
        "skipinitialspace": True,
        "quoting": csv.QUOTE_MINIMAL,
    }


# What the parsers raise on corrupt or hostile bytes: pyarrow's ArrowInvalid (a ValueError) or
# ArrowNotImplementedError (a list where the file's own metadata promises text), the JSON
# decoder's depth limit (ValueError) and mixed record shapes (TypeError), truncated archives.
_PARSER_FAILURES = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    NotImplementedError,
    pa.ArrowException,
    OSError,
    EOFError,
    RecursionError,
)


@contextmanager
def _parse_errors(fmt: str) -> Iterator[None]:
    """Turn whatever the parsers raise into a one-line ReadError."""
    try:
        with warnings.catch_warnings():
            # Rows longer than the header would silently lose fields (or become an index).
            warnings.simplefilter("error", pd.errors.ParserWarning)
            yield
    except pd.errors.ParserWarning:
        raise ReadError(
            "malformed CSV: rows have more fields than there are column names"
        ) from None
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.start + 1]
        raise ReadError(f"not valid UTF-8 text ({exc.reason}, byte {bad!r})") from None
    except pd.errors.EmptyDataError:
        raise ReadError("file has no header and no rows") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        raise ReadError(f"malformed {fmt.upper()}: {one_line(detail)}") from None
    except _PARSER_FAILURES as exc:
        raise ReadError(
            f"cannot parse as {fmt}: {one_line(str(exc) or type(exc).__name__)}"
        ) from None
    except MemoryError:
        raise ReadError(f"cannot parse as {fmt}: the file needs more memory than is free") from None


@contextmanager
def _csv_text(
    path: Path, spec: Spec, compression: str | None, *, header: bool = False
) -> Iterator[CheckedRecords]:
    """The decoded text, streamed and checked record by record (see assay.data.csv_lines).
    `header`: the stream starts at the header, whose field count the records must match."""
    source = spec.source
    # utf-8-sig: a byte-order mark (as spreadsheets write) is not part of the first cell.
    with get_handle(path, "r", compression=compression, encoding="utf-8-sig", errors="strict") as f:
        yield CheckedRecords(
            f.handle,
            delimiter=source.delimiter,
            comment=source.comment,
            fields=None if header else _field_counts(spec),
            skip=source.bad_lines == "skip",
        )


def _field_counts(spec: Spec) -> tuple[int, ...]:
    """What a headerless file's records may hold: every name, or all but a last label column
    (an unlabelled file, or rows to score)."""
    names = spec.source.names or []
    if names and names[-1] == spec.label.column:
        return (len(names), len(names) - 1)
    return (len(names),)


def _left_off(text: CheckedRecords, spec: Spec) -> list[str]:
    """The label column of a headerless file whose records leave it off: absent, not empty."""
    names = spec.source.names or []
    if not spec.source.header and names and text.fields == len(names) - 1:
        return [names[-1]]
    return []


def _header(path: Path, spec: Spec, compression: str | None) -> tuple[list[str], list[str]]:
    """A header file's column names, made unique by source.repeated_headers, and the copies
    the policy drops."""
    with get_handle(path, "r", compression=compression, encoding="utf-8-sig", errors="strict") as f:
        names = header_names(f.handle, delimiter=spec.source.delimiter, comment=spec.source.comment)
    return unique_names(names, spec.source.repeated_headers)


def normalize(raw: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """The spec's batch columns from a frame of raw cells (see assay.data.transform)."""
    return to_batch(raw, spec)[0]
