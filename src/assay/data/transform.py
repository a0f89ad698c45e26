"""From the cells a file holds to the batch the spec describes: renamed columns, the row filter,
label values, code tables, numbers, datetime parts, derived columns and fairness attributes.

Everything here reads the spec as data (no expression is evaluated), works on whole columns,
and raises ReadError with one line naming the column and the first data row at fault. Rows a
filter or the label rule leaves out are counted, never lost silently.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from assay.config import Spec
from assay.config.source import AttributeSpec, ColumnSpec, DeriveSpec, RowFilter
from assay.data.cells import as_number, datetime_parts, shown
from assay.errors import ReadError

MAX_CELL_CHARS = 64 * 1024  # one cell of a spec column, checked after parsing


@dataclass(frozen=True)
class RowCounts:
    """What happened to a file's data rows on the way into the batch."""

    filtered: int = 0  # left out by source.filter
    dropped_labels: int = 0  # label neither class, with label.other: drop

    def __add__(self, other: RowCounts) -> RowCounts:
        return RowCounts(self.filtered + other.filtered, self.dropped_labels + other.dropped_labels)

    def describe(self) -> str:
        parts = []
        if self.filtered:
            parts.append(f"{self.filtered:,} row(s) left out by source.filter")
        if self.dropped_labels:
            parts.append(f"{self.dropped_labels:,} row(s) whose label is neither class dropped")
        return "; ".join(parts)


Cells = Mapping[str, pd.Series]  # a file's columns as text (numbers that arrived as numbers)


def to_batch(raw: pd.DataFrame, spec: Spec) -> tuple[pd.DataFrame, RowCounts]:
    """The spec's batch columns (id, model inputs, fairness attributes, label) from a frame of
    raw cells, with the rows the filter and the label rule keep."""
    names = [str(c).strip() for c in raw.columns]
    names = [spec.source.rename.get(n, n) for n in names]
    if names != list(raw.columns):  # a copy of the frame only when a name changes
        raw = raw.set_axis(names, axis="columns")
    _check_present(raw, spec)
    needed = [*spec.raw_columns, *(spec.source.filter.columns() if spec.source.filter else [])]
    columns = {}
    for name in dict.fromkeys(needed):
        if name in raw.columns:
            columns[name] = raw[name]
            if isinstance(columns[name], pd.DataFrame):
                raise ReadError(f"column '{name}' appears more than once")
    already = _already_numbers(columns, spec)
    numbers = {n: c.astype("float64") for n, c in columns.items() if n in already}
    texts = _as_texts(
        {n: c for n, c in columns.items() if n not in already}, set(spec.source.missing_values)
    )
    text: Cells = {n: numbers[n] if n in numbers else texts[n] for n in columns}
    counts, index = RowCounts(), raw.index
    if spec.source.filter is not None or spec.label.column in text:
        text, index, counts = _kept_rows(pd.DataFrame(text, index=index), spec)
    return _converted(text, index, spec).reset_index(drop=True), counts


def _kept_rows(frame: pd.DataFrame, spec: Spec) -> tuple[Cells, pd.Index, RowCounts]:
    """The rows the filter and the label rule keep, and how many each left out."""
    counts = RowCounts()
    if spec.source.filter is not None:
        keep = _passes(spec.source.filter, frame)
        counts = RowCounts(filtered=int((~keep).sum()))
        frame = frame[keep]
    if spec.label.column in frame.columns:
        frame, dropped = _with_classes(frame, spec)
        counts = counts + RowCounts(dropped_labels=dropped)
    return {n: frame[n] for n in frame.columns}, frame.index, counts


def _already_numbers(columns: Cells, spec: Spec) -> set[str]:
    """Numeric columns that arrive as numbers (parquet, JSON, an API's frame) and can skip the
    round trip through text: the same values, as long as no missing-value marker is itself a
    number and the filter does not read the column as text."""
    if any(_is_number(m) for m in spec.source.missing_values):
        return set()
    filtered = set(spec.source.filter.columns()) if spec.source.filter else set()
    return {
        name
        for name, column in spec.columns.items()
        if column.type == "numeric"
        and name not in filtered
        and name in columns
        and pd.api.types.is_numeric_dtype(columns[name])
        and not pd.api.types.is_bool_dtype(columns[name])
    }


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_present(raw: pd.DataFrame, spec: Spec) -> None:
    if not spec.label.allow_unlabelled_batches and spec.label.column not in raw.columns:
        raise ReadError(
            f"label column '{spec.label.column}' is missing "
            "(set label.allow_unlabelled_batches to accept unlabelled files)"
        )
    missing = [c for c in spec.raw_columns if c not in raw.columns and c != spec.label.column]
    if missing:
        raise ReadError(f"missing column(s): {', '.join(missing)}")
    if spec.source.filter is not None:
        absent = [c for c in spec.source.filter.columns() if c not in raw.columns]
        if absent:
            raise ReadError(f"source.filter reads column(s) the file lacks: {', '.join(absent)}")


def _converted(text: Cells, index: pd.Index, spec: Spec) -> pd.DataFrame:
    """The batch columns from the cells (a frame is built once, at the end: on a small frame
    each construction costs more than the conversions)."""
    out: dict[str, pd.Series] = {}
    if spec.id_column:
        out[spec.id_column] = text[spec.id_column]
    for name, column in spec.columns.items():
        out.update(_column(text[name], name, column))
    for name, rule in spec.derive.items():
        out[name] = _derived(rule, text, out, spec)
    for name, attribute in spec.fairness.attributes.items():
        out[name] = _attribute(attribute, name, text, out)
    if spec.label.column in text:
        out[spec.label.column] = text[spec.label.column]
    return pd.DataFrame(out, index=index)


def _column(text: pd.Series, name: str, column: ColumnSpec) -> dict[str, pd.Series]:
    if column.type == "numeric":
        return {name: as_number(text, name)}
    if column.type == "datetime":
        return datetime_parts(text, name, column)
    if isinstance(column.values, dict):
        return {name: text.replace(column.values)}
    return {name: text}


# Filter


def _passes(predicate: RowFilter, cells: pd.DataFrame) -> np.ndarray:
    """Whether each row passes; a missing cell passes only is_null and the negative tests."""
    if predicate.all is not None:
        return np.logical_and.reduce([_passes(p, cells) for p in predicate.all])
    if predicate.any is not None:
        return np.logical_or.reduce([_passes(p, cells) for p in predicate.any])
    if predicate.not_ is not None:
        return ~_passes(predicate.not_, cells)
    name = str(predicate.column)
    text = cells[name]
    present = text.notna().to_numpy(dtype=bool)
    if predicate.is_null is not None:
        return ~present if predicate.is_null else present
    if predicate.between is not None or predicate.min is not None or predicate.max is not None:
        low, high = predicate.between or (predicate.min, predicate.max)
        number = _filter_numbers(text, name)
        inside = np.ones(len(text), dtype=bool)
        if low is not None:
            inside &= (number >= low).fillna(False).to_numpy(dtype=bool)
        if high is not None:
            inside &= (number <= high).fillna(False).to_numpy(dtype=bool)
        return present & inside
    negative = predicate.not_equals is not None or predicate.not_in is not None
    wanted = predicate.in_ or predicate.not_in
    if wanted is None:
        wanted = [predicate.equals if predicate.equals is not None else predicate.not_equals]
    match = present & _matches(text, name, wanted)
    return ~match if negative else match


def _matches(text: pd.Series, name: str, wanted: list[object]) -> np.ndarray:
    """Numbers compare as numbers (1 equals '1.0'); anything else as the cell's text."""
    numbers = [v for v in wanted if isinstance(v, int | float) and not isinstance(v, bool)]
    words = [str(v) for v in wanted if v not in numbers]
    hit = text.isin(words).fillna(False).to_numpy(dtype=bool)
    if numbers:
        value = pd.to_numeric(text, errors="coerce")
        hit = hit | value.isin(numbers).to_numpy(dtype=bool)
    return hit


def _filter_numbers(text: pd.Series, name: str) -> pd.Series:
    try:
        return as_number(text, name)
    except ReadError as exc:
        raise ReadError(f"source.filter: {exc}") from None


# Label


def _with_classes(text: pd.DataFrame, spec: Spec) -> tuple[pd.DataFrame, int]:
    """Labels mapped to the two classes; anything else is an error or dropped, by the spec."""
    label = spec.label
    mapped = text[label.column].replace(label.mapping())
    other = (mapped.notna() & ~mapped.isin([label.positive, label.negative])).to_numpy(dtype=bool)
    text = text.assign(**{label.column: mapped})
    if not other.any():
        return text, 0
    if label.other == "drop":
        return text[~other], int(other.sum())
    values = ", ".join(shown(v) for v in mapped[other].unique()[:3])
    first = int(text.index[other][0]) + 1
    raise ReadError(
        f"label column '{label.column}': {int(other.sum())} row(s) are neither "
        f"{label.positive!r} nor {label.negative!r} ({values}), first in data row {first} "
        "(map them in label.values, filter them with source.filter, or set label.other: drop)"
    )


# Cells


def _as_texts(columns: dict[str, pd.Series], missing: set[str]) -> dict[str, pd.Series]:
    """Every cell as stripped text, missing markers as missing. The columns of text are done
    together as one long column: on a small frame (an online request) each pandas call costs
    far more than its cells."""
    for name, column in columns.items():
        if (
            _may_nest(column)
            and column.map(lambda v: isinstance(v, dict | list | np.ndarray)).any()
        ):
            raise ReadError(f"column '{name}' holds nested values (lists or objects), not cells")
    joined = [n for n, c in columns.items() if _holds_text(c)]
    out = {n: _as_text(c, n, missing) for n, c in columns.items() if n not in joined}
    if joined:
        index = columns[joined[0]].index
        rows = len(index)
        stacked = pd.concat([columns[n] for n in joined], ignore_index=True)
        text = stacked.astype("string").str.strip()
        _within_cell_limit(text, joined, index)
        cells = text.mask(text.isin(missing)).array
        for k, name in enumerate(joined):
            out[name] = pd.Series(cells[k * rows : (k + 1) * rows], index=index, name=name)
    return out


def _is_nested(value: object) -> bool:
    return isinstance(value, dict | list | np.ndarray)


def _holds_text(column: pd.Series) -> bool:
    return column.dtype == object or isinstance(column.dtype, pd.StringDtype)


def _as_text(column: pd.Series, name: str, missing: set[str]) -> pd.Series:
    """A column of numbers, booleans or dates as text."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        text = column.astype("string")  # a number's text has no spaces and is short
    else:
        text = column.astype("string").str.strip()
        _within_cell_limit(text, [name], column.index)
    return text.mask(text.isin(missing))


# What pandas.api.types.infer_dtype calls an object column that holds only cells of one kind
_PLAIN_KINDS = {"string", "empty", "floating", "integer", "mixed-integer-float", "boolean"}


def _may_nest(column: pd.Series) -> bool:
    """Whether a column could hold lists or objects: only an object column whose cells are
    not all of one plain kind (pandas infers that in C; the per-cell check is slow)."""
    if column.dtype != object:
        return False
    return pd.api.types.infer_dtype(column, skipna=True) not in _PLAIN_KINDS


def _within_cell_limit(text: pd.Series, names: list[str], index: pd.Index) -> None:
    """A cell past the limit is an error naming where it is, not a value the validator, the
    report and the tokenizer all copy around. `text` holds the columns `names` one after the
    other, each with the rows of `index`."""
    lengths = text.str.len().to_numpy(dtype="float64", na_value=0.0)
    over = np.flatnonzero(lengths > MAX_CELL_CHARS)
    if len(over):
        column, row = divmod(int(over[0]), len(index))
        longest = lengths[column * len(index) : (column + 1) * len(index)].max()
        raise ReadError(
            f"column '{names[column]}': a cell of {int(longest):,} characters in data row "
            f"{int(index[row]) + 1} (the limit is {MAX_CELL_CHARS:,})"
        )


# Derived columns and attributes


def _number_of(name: str, text: Cells, converted: dict[str, pd.Series]) -> pd.Series:
    """A numeric input: the converted column, or the raw column read as numbers."""
    if name in converted:
        return converted[name]
    return as_number(text[name], name)


def _derived(
    rule: DeriveSpec, text: Cells, converted: dict[str, pd.Series], spec: Spec
) -> pd.Series:
    if rule.bins is not None:
        number = _number_of(rule.bins.column, text, converted)
        return bands(number, rule.bins.edges, rule.bins.labels)
    a, b = (_number_of(s, text, converted) for s in rule.sources)
    if rule.ratio is not None:
        return a / b.mask(b == 0)
    return a - b


def _attribute(
    attribute: AttributeSpec, name: str, text: Cells, converted: dict[str, pd.Series]
) -> pd.Series:
    source = attribute.column or name
    if attribute.bins is not None:
        return bands(_number_of(source, text, converted), attribute.bins, attribute.labels)
    values = converted.get(source, text[source]).astype("string")
    groups = {raw: group for group, raws in attribute.merge.items() for raw in raws}
    return values.replace(groups) if groups else values


def bands(number: pd.Series, edges: list[float], labels: list[str] | None) -> pd.Series:
    """'<e0', 'e0-e1', ..., 'ek+' (or the given labels); a missing number stays missing."""
    names = labels or [
        f"<{edges[0]:g}",
        *(f"{a:g}-{b:g}" for a, b in itertools.pairwise(edges)),
        f"{edges[-1]:g}+",
    ]
    index = np.digitize(number.to_numpy(dtype="float64", na_value=np.nan), edges)
    out = pd.Series(np.asarray(names, dtype=object)[index], index=number.index, dtype="string")
    return out.mask(number.isna())
