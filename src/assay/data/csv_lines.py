"""The decoded text of a CSV file, checked record by record before pandas parses it.

A record whose field count differs from the header's is a row broken by an unquoted newline,
a stray delimiter or a truncated write. pandas fills a short row with missing values and
keeps going, which hides it; here such a record is an error naming its line, or (with
`source.bad_lines: skip`) is blanked out of the stream and kept, byte for byte, so the ingest
can quarantine it beside the accepted batch. Comment lines are blanked too: the parser skips
blank lines, and its line numbers stay the file's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from assay.errors import ReadError

# One physical line: generous for real tables (Adult's longest is ~150 characters), small
# enough that a one-line multi-gigabyte file (or a decompression bomb) stops early.
MAX_LINE_CHARS = 4 * 1024 * 1024


@dataclass
class BadLines:
    """Records set aside by the scan: where each started, and the lines exactly as written."""

    starts: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    records: int = 0  # data records seen, good and bad

    def add(self, start: int, raw: list[str]) -> None:
        self.starts.append(start)
        self.lines.extend(range(start, start + len(raw)))
        self.text.extend(raw)

    def __len__(self) -> int:
        return len(self.starts)

    def content(self) -> bytes:
        """The skipped lines' bytes (the file is UTF-8, read with its line endings kept)."""
        return "".join(self.text).encode("utf-8")


def line_too_long(line: int) -> ReadError:
    return ReadError(
        f"line {line:,} is longer than {MAX_LINE_CHARS:,} characters "
        "(a huge field, or not a line-oriented file)"
    )


class CheckedRecords(io.TextIOBase):
    """A read-only text stream: `source` with comment lines blanked and every record checked
    against the field count of the first: the header's (`fields` None), or the first data
    record's, which must be one of `fields` (a headerless file may leave off a last label
    column, as files to score do, but then every record must).

    With `skip`, a record of another field count is blanked and recorded in `bad`; without,
    it is a ReadError naming the line."""

    def __init__(
        self,
        source: IO[str],
        *,
        delimiter: str,
        comment: str | None,
        fields: tuple[int, ...] | None,
        skip: bool,
    ) -> None:
        super().__init__()
        self._source = source
        self._comment = comment
        self._allowed = fields
        self._fields: int | None = None
        self._skip = skip
        self._header_pending = fields is None
        self._expected = "the header has" if fields is None else "source.names lists"
        self._line = 0
        self._pending = ""
        self._consumed: list[str] = []
        self._records = csv.reader(self._lines(), delimiter=delimiter, skipinitialspace=True)
        self.bad = BadLines()

    def readable(self) -> bool:
        return True

    @property
    def fields(self) -> int | None:
        """The field count every record has (known once the first record is read)."""
        return self._fields

    def _lines(self) -> Iterator[str]:
        while True:
            line = self._source.readline(MAX_LINE_CHARS + 1)
            if not line:
                return
            self._line += 1
            if len(line) > MAX_LINE_CHARS:
                raise line_too_long(self._line)
            self._consumed.append(line)
            if self._comment is not None and line.startswith(self._comment):
                yield "\n"
            else:
                yield line

    def _next_record(self) -> str | None:
        """The next record's text as the parser should see it, or None at the end."""
        try:
            fields = next(self._records, None)
        except csv.Error as exc:
            raise ReadError(f"malformed CSV near line {self._line:,}: {exc}") from None
        if fields is None:
            return None
        raw, self._consumed = self._consumed, []
        start = self._line - len(raw) + 1
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            return "\n" * len(raw)  # a blank or comment line
        if self._header_pending:
            self._header_pending, self._fields = False, len(fields)
            return "".join(raw)
        self.bad.records += 1
        if self._fields is None and self._allowed and len(fields) in self._allowed:
            self._fields = len(fields)
        if len(fields) == self._fields:
            return "".join(raw)
        if not self._skip:
            expected = self._fields or max(self._allowed or (0,))
            raise ReadError(
                f"malformed CSV: line {start:,} has {len(fields)} fields where {self._expected} "
                f"{expected} (a row broken by a newline? set source.bad_lines: skip to set such "
                "lines aside)"
            )
        self.bad.add(start, raw)
        return "\n" * len(raw)

    def read(self, size: int | None = -1) -> str:
        parts, length = [self._pending], len(self._pending)
        while size is None or size < 0 or length < size:
            record = self._next_record()
            if record is None:
                break
            parts.append(record)
            length += len(record)
        text = "".join(parts)
        cut = len(text) if size is None or size < 0 else size
        self._pending = text[cut:]
        return text[:cut]


def header_names(source: IO[str], *, delimiter: str, comment: str | None) -> list[str]:
    """The first record that is not blank or a comment, as stripped names."""
    lines = (
        line
        for line in iter(lambda: source.readline(MAX_LINE_CHARS + 1), "")
        if comment is None or not line.startswith(comment)
    )
    try:
        for fields in csv.reader(lines, delimiter=delimiter, skipinitialspace=True):
            if fields:
                return [f.strip() for f in fields]
    except csv.Error as exc:
        raise ReadError(f"malformed CSV header: {exc}") from None
    raise ReadError("file has no header and no rows")


def unique_names(names: list[str], policy: str) -> tuple[list[str], list[str]]:
    """Header names made unique by `source.repeated_headers`, and the copies to drop.

    'error' refuses a repeat naming the column and its positions (1-based); 'first' and
    'last' keep one copy; 'suffix' keeps them all as name, name.1, name.2, ..."""
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        positions.setdefault(name, []).append(i)
    repeated = {n: p for n, p in positions.items() if len(p) > 1}
    if not repeated:
        return list(names), []
    if policy == "error":
        name, where = next(iter(repeated.items()))
        shown = ", ".join(str(p + 1) for p in where)
        raise ReadError(
            f"the header names column '{name}' more than once (positions {shown}); set "
            "source.repeated_headers to first, last or suffix"
        )
    out, drop, taken = list(names), [], set(names)
    for name, where in repeated.items():
        keep = where[-1] if policy == "last" else where[0]
        for copy, i in enumerate(p for p in where if p != keep):
            if policy == "suffix":
                n = copy + 1
                while f"{name}.{n}" in taken:
                    n += 1
                out[i] = f"{name}.{n}"
            else:
                out[i] = f"\0repeat{i}"
                drop.append(out[i])
            taken.add(out[i])
    return out, drop
