"""A cell's text read as a typed value: numbers, and the parts of datetimes in the column's
timezone. A cell that does not parse is an error that names the column, the first data row
and a few of the values (cut short: the reason names a value, it does not carry it)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from assay.config.source import ColumnSpec
from assay.errors import ReadError

_SHOWN_VALUE_CHARS = 40


def shown(value: object) -> str:
    """A value quoted for a reason, cut short: the reason names it, it does not carry it."""
    text = str(value)
    return repr(text if len(text) <= _SHOWN_VALUE_CHARS else text[:_SHOWN_VALUE_CHARS] + "\u2026")


def _not_parsed(text: pd.Series, parsed: pd.Series, name: str, what: str) -> None:
    bad = (text.notna() & parsed.isna()).to_numpy(dtype=bool)
    if bad.any():
        examples = ", ".join(shown(v) for v in text[bad].unique()[:3])
        first = int(text.index[bad][0]) + 1
        raise ReadError(
            f"column '{name}': {int(bad.sum())} value(s) are not {what} ({examples}), "
            f"first in data row {first}"
        )


def as_number(text: pd.Series, name: str) -> pd.Series:
    """Text read as numbers (a cell that is not one is an error naming it); numbers as they
    are."""
    if text.dtype == "float64":
        return text
    number = pd.to_numeric(text, errors="coerce").astype("float64")
    _not_parsed(text, number, name, "numbers")
    return number


# Datetimes


def datetime_parts(text: pd.Series, name: str, column: ColumnSpec) -> dict[str, pd.Series]:
    """The parts the spec selects, read in the column's timezone: timestamps without an offset
    are taken to be in it, ones with an offset are converted to it (a column that mixes
    offsets is read through UTC first)."""
    stamps = _as_datetime(text, name, column)
    parts: dict[str, pd.Series] = {}
    for part in column.features:
        if part == "elapsed_days":
            since = _in_zone(pd.Series([pd.Timestamp(column.reference)]), column.timezone)[0]
            value = (stamps - since) / pd.Timedelta(days=1)
        elif part == "weekday":
            value = stamps.dt.weekday
        elif part == "day_of_year":
            value = stamps.dt.dayofyear
        else:
            value = getattr(stamps.dt, part)
        parts[f"{name}_{part}"] = value.astype("float64")
    return parts


def _as_datetime(text: pd.Series, name: str, column: ColumnSpec) -> pd.Series:
    fmt = column.format or "ISO8601"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format" and the like
        try:
            stamps = pd.to_datetime(text, format=fmt, errors="coerce")
        except ValueError:  # offsets differ between rows
            _offsets_everywhere(text, name)
            stamps = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    described = f"datetimes in format {column.format!r}" if column.format else "ISO 8601 datetimes"
    _not_parsed(text, stamps, name, described)
    return _in_zone(stamps, column.timezone)


def _offsets_everywhere(text: pd.Series, name: str) -> None:
    """Rows with an offset and rows without cannot share a zone rule: which zone a bare
    timestamp is in would be a guess, so it is an error."""
    present = text.dropna()
    with_offset = present.str.contains(r"(?:Z|[+-]\d\d(?::?\d\d)?)$", regex=True)
    if not with_offset.all():
        first = int(present.index[~with_offset.to_numpy(dtype=bool)][0]) + 1
        raise ReadError(
            f"column '{name}' mixes timestamps with and without a UTC offset (first without "
            f"in data row {first}); write every one with its offset, or none"
        )


def _in_zone(stamps: pd.Series, zone: str) -> pd.Series:
    if stamps.dt.tz is None:
        # a wall-clock time that happens twice (autumn) is read as standard time; one that
        # never happens (spring) moves forward to the first that does
        return stamps.dt.tz_localize(
            zone, ambiguous=np.zeros(len(stamps), dtype=bool), nonexistent="shift_forward"
        )
    return stamps.dt.tz_convert(zone)
