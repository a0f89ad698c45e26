"""Parse one data file into the spec's columns and types, or say in one line why not.

The bundled Adult files go through this same reader as any user file. Cells are read as text
first so that nothing is guessed: numeric columns are converted explicitly and a value that is
not a number is an error naming the column, not a silent NaN.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.io.common import get_handle, infer_compression

from assay.config import Spec
from assay.errors import ReadError

# Limits that turn hostile files into a clear ReadError instead of a stalled or OOM-killed
# ingest. Generous for real tables (Adult's longest line is ~150 characters).
MAX_LINE_CHARS = 4 * 1024 * 1024  # one physical CSV line, checked while streaming
MAX_CELL_CHARS = 64 * 1024  # one cell of a spec column, checked after parsing
MAX_COLUMNS = 4096  # fields per row
MAX_REASON_CHARS = 300  # a reason is one line a person reads, never a dump of the data
_SHOWN_VALUE_CHARS = 40

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


def read_table(path: str | Path, spec: Spec, *, name: str | None = None) -> pd.DataFrame:
    """Read a file into a frame with the spec's columns (id, features, label) and dtypes.

    `name` is the file's own name when `path` reaches it another way (an open descriptor's
    /proc/self/fd path): format and compression go by it.

    Raises ReadError with a one-line reason for anything that stops parsing: an empty file,
    bytes that are not UTF-8, malformed CSV, missing columns, non-numeric numbers, or a file
    past the size limits above (a line, a cell, the number of columns).
    """
    with _one_line_errors():
        path = _nonempty_file(path)
        raw = _read_raw(path, spec, Path(name) if name else path)
        if raw.empty:
            raise ReadError("file has no data rows")
        _reject_header_row(raw, spec)
        return normalize(raw, spec)


def read_chunks(path: str | Path, spec: Spec, rows: int) -> Iterator[pd.DataFrame]:
    """Read a file `rows` rows at a time, each chunk normalized as read_table would, so a file
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


def _read_raw(path: Path, spec: Spec, named: Path) -> pd.DataFrame:
    fmt = detect_format(named, spec.source.format)
    compression = infer_compression(str(named), "infer")
    with _parse_errors(fmt):
        if fmt == "parquet":
            raw = pd.read_parquet(path).reset_index(drop=True)
        elif fmt == "jsonl":
            raw = pd.read_json(
                path, lines=True, dtype=False, encoding="utf-8", compression=compression
            )
        else:
            with _csv_text(path, spec.source.comment, compression) as text:
                raw = pd.read_csv(text, **_csv_options(spec))
    return _checked_shape(raw, fmt)


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
        with (
            _csv_text(path, spec.source.comment, "infer") as text,
            pd.read_csv(text, chunksize=rows, **_csv_options(spec)) as reader,
        ):
            yield reader


def _csv_options(spec: Spec) -> dict[str, Any]:
    """Every cell as text, exactly as written; nothing inferred."""
    return {
        "index_col": False,
        "dtype": str,
        "keep_default_na": False,
        "header": 0 if spec.source.header else None,
        "names": None if spec.source.header else spec.source.names,
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
def _csv_text(path: Path, comment: str | None, compression: str | None) -> Iterator[IO[str]]:
    """The decoded text, streamed, with lines that start with the comment marker blanked (the
    parser skips blank lines, and its line numbers stay the file's). pandas' own `comment`
    option also cuts a line at the marker mid-line, which would corrupt values containing it."""
    # utf-8-sig: a byte-order mark (as spreadsheets write) is not part of the first cell.
    with get_handle(path, "r", compression=compression, encoding="utf-8-sig", errors="strict") as f:
        if comment is None:
            yield _LineLimit(f.handle)
        else:
            yield _BlankedComments(f.handle, comment)


def _line_too_long(line: int) -> ReadError:
    return ReadError(
        f"line {line:,} is longer than {MAX_LINE_CHARS:,} characters "
        "(a huge field, or not a line-oriented file)"
    )


class _LineLimit(io.TextIOBase):
    """A read-only text stream: `source` unchanged, except that a physical line longer than
    MAX_LINE_CHARS is a ReadError. Checked per chunk, so a one-line multi-gigabyte file (or a
    decompression bomb) stops after a few megabytes instead of being parsed into memory."""

    def __init__(self, source: IO[str]) -> None:
        super().__init__()
        self._source = source
        self._line_chars = 0
        self._lines = 1

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        text = self._source.read(-1 if size is None else size)
        first, last = text.find("\n"), text.rfind("\n")
        if first < 0:
            self._line_chars += len(text)
        else:
            longest = self._line_chars + first
            if last - first > MAX_LINE_CHARS:  # only a chunk this big can hold a whole long line
                longest = max(longest, *map(len, text[first:last].split("\n")))
            if longest > MAX_LINE_CHARS:
                raise _line_too_long(self._lines)
            self._lines += text.count("\n")
            self._line_chars = len(text) - last - 1
        if self._line_chars > MAX_LINE_CHARS:
            raise _line_too_long(self._lines)
        return text


class _BlankedComments(io.TextIOBase):
    """A read-only text stream: `source` with its comment lines replaced by empty lines, and
    the same line-length limit as _LineLimit (each line is read with a bound)."""

    def __init__(self, source: IO[str], comment: str) -> None:
        super().__init__()
        self._source = source
        self._comment = comment
        self._pending = ""
        self._lines = 0

    def readable(self) -> bool:
        return True

    def _next_line(self) -> str:
        line = self._source.readline(MAX_LINE_CHARS + 1)
        self._lines += 1
        if len(line) > MAX_LINE_CHARS:
            raise _line_too_long(self._lines)
        return line

    def read(self, size: int | None = -1) -> str:
        parts, length = [self._pending], len(self._pending)
        while size is None or size < 0 or length < size:
            line = self._next_line()
            if not line:
                break
            parts.append("\n" if line.startswith(self._comment) else line)
            length += len(parts[-1])
        text = "".join(parts)
        cut = len(text) if size is None or size < 0 else size
        self._pending = text[cut:]
        return text[:cut]


def normalize(raw: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Select the spec's columns and convert them: text stripped, missing markers to NA,
    label aliases applied, numbers parsed. Columns the spec does not know are dropped."""
    raw = raw.rename(columns=lambda c: str(c).strip())
    required = spec.required_columns
    if not spec.label.allow_unlabelled_batches and spec.label.column not in raw.columns:
        raise ReadError(
            f"label column '{spec.label.column}' is missing "
            "(set label.allow_unlabelled_batches to accept unlabelled files)"
        )
    missing = [c for c in required if c not in raw.columns and c != spec.label.column]
    if missing:
        raise ReadError(f"missing column(s): {', '.join(missing)}")
    missing_markers = set(spec.source.missing_values)
    out: dict[str, pd.Series] = {}
    for name in (c for c in required if c in raw.columns):
        column = raw[name]
        if isinstance(column, pd.DataFrame):
            raise ReadError(f"column '{name}' appears more than once")
        kind = spec.columns[name].type if name in spec.columns else "categorical"
        text = _as_text(column, name, missing_markers)
        if kind == "numeric":
            out[name] = _as_number(text, name)
        elif name == spec.label.column:
            out[name] = text.replace(spec.label.aliases)
        else:
            out[name] = text
    return pd.DataFrame(out).reset_index(drop=True)


def _as_text(column: pd.Series, name: str, missing: set[str]) -> pd.Series:
    nested = column.map(lambda v: isinstance(v, dict | list | np.ndarray)).any()
    if nested:
        raise ReadError(f"column '{name}' holds nested values (lists or objects), not cells")
    text = column.astype("string").str.strip()
    _within_cell_limit(text, name)
    return text.mask(text.isin(missing))


def _within_cell_limit(text: pd.Series, name: str) -> None:
    """A cell past the limit is an error naming where it is, not a value the validator, the
    report and the tokenizer all copy around."""
    lengths = text.str.len()
    over = (lengths > MAX_CELL_CHARS).fillna(False).to_numpy(dtype=bool)
    if over.any():
        first = int(text.index[over][0]) + 1
        raise ReadError(
            f"column '{name}': a cell of {int(lengths[over].max()):,} characters in data row "
            f"{first} (the limit is {MAX_CELL_CHARS:,})"
        )


def _shown(value: object) -> str:
    """A value quoted for a reason, cut short: the reason names it, it does not carry it."""
    text = str(value)
    return repr(text if len(text) <= _SHOWN_VALUE_CHARS else text[:_SHOWN_VALUE_CHARS] + "\u2026")


def _as_number(text: pd.Series, name: str) -> pd.Series:
    number = pd.to_numeric(text, errors="coerce").astype("float64")
    bad = text.notna() & number.isna()
    if bad.any():
        examples = ", ".join(_shown(v) for v in text[bad].unique()[:3])
        first = int(text.index[bad.to_numpy()][0]) + 1
        raise ReadError(
            f"column '{name}': {int(bad.sum())} value(s) are not numbers ({examples}), "
            f"first in data row {first}"
        )
    return number
