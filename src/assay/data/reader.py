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

import pandas as pd
import pyarrow.parquet as pq
from pandas.io.common import get_handle

from assay.config import Spec
from assay.errors import ReadError

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


def read_table(path: str | Path, spec: Spec) -> pd.DataFrame:
    """Read a file into a frame with the spec's columns (id, features, label) and dtypes.

    Raises ReadError with a one-line reason for anything that stops parsing: an empty file,
    bytes that are not UTF-8, malformed CSV, missing columns, or non-numeric numbers.
    """
    path = _nonempty_file(path)
    raw = _read_raw(path, spec)
    if raw.empty:
        raise ReadError("file has no data rows")
    return normalize(raw, spec)


def read_chunks(path: str | Path, spec: Spec, rows: int) -> Iterator[pd.DataFrame]:
    """Read a file `rows` rows at a time, each chunk normalized as read_table would, so a file
    of any size is read with bounded memory. Raises ReadError as read_table does; an error in
    a later chunk comes after the earlier chunks were yielded."""
    path = _nonempty_file(path)
    seen = 0
    for raw in _raw_chunks(path, spec, rows):
        if len(raw):
            raw.index = pd.RangeIndex(seen, seen + len(raw))  # row positions in the file
            seen += len(raw)
            yield normalize(raw, spec)
    if not seen:
        raise ReadError("file has no data rows")


def _nonempty_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ReadError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ReadError("file is empty (0 bytes)")
    return path


def _read_raw(path: Path, spec: Spec) -> pd.DataFrame:
    fmt = detect_format(path, spec.source.format)
    with _parse_errors(fmt):
        if fmt == "parquet":
            return pd.read_parquet(path).reset_index(drop=True)
        if fmt == "jsonl":
            return pd.read_json(path, lines=True, dtype=False, encoding="utf-8")
        with _csv_text(path, spec.source.comment) as text:
            return pd.read_csv(text, **_csv_options(spec))


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
            yield frame


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
            _csv_text(path, spec.source.comment) as text,
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
        raise ReadError(f"malformed {fmt.upper()}: {detail}") from None
    except (ValueError, OSError, EOFError) as exc:
        # pyarrow and the JSON reader report corrupt files as ValueError/ArrowInvalid/OSError.
        raise ReadError(f"cannot parse as {fmt}: {str(exc).splitlines()[0]}") from None


@contextmanager
def _csv_text(path: Path, comment: str | None) -> Iterator[IO[str]]:
    """The decoded text, streamed, with lines that start with the comment marker blanked (the
    parser skips blank lines, and its line numbers stay the file's). pandas' own `comment`
    option also cuts a line at the marker mid-line, which would corrupt values containing it."""
    with get_handle(path, "r", compression="infer", encoding="utf-8", errors="strict") as f:
        yield f.handle if comment is None else _BlankedComments(f.handle, comment)


class _BlankedComments(io.TextIOBase):
    """A read-only text stream: `source` with its comment lines replaced by empty lines."""

    def __init__(self, source: IO[str], comment: str) -> None:
        super().__init__()
        self._lines = iter(source)
        self._comment = comment
        self._pending = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        parts, length = [self._pending], len(self._pending)
        while size is None or size < 0 or length < size:
            line = next(self._lines, "")
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
    nested = column.map(lambda v: isinstance(v, dict | list)).any()
    if nested:
        raise ReadError(f"column '{name}' holds nested values (lists or objects), not cells")
    text = column.astype("string").str.strip()
    return text.mask(text.isin(missing))


def _as_number(text: pd.Series, name: str) -> pd.Series:
    number = pd.to_numeric(text, errors="coerce").astype("float64")
    bad = text.notna() & number.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in text[bad].unique()[:3])
        first = int(text.index[bad.to_numpy()][0]) + 1
        raise ReadError(
            f"column '{name}': {int(bad.sum())} value(s) are not numbers ({examples}), "
            f"first in data row {first}"
        )
    return number
