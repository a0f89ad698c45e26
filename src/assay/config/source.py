"""Spec sections that say how a file's rows become a batch: parsing, row filters, column types
(with coded values and datetimes), derived columns, label values and fairness attributes.

The reader (assay.data.transform) is their consumer; assay.config.spec.Spec composes them with
the training sections. Every predicate and derivation is data, never code: nothing in a spec is
evaluated.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ColumnType = Literal["categorical", "numeric", "text", "datetime"]
FeatureKind = Literal["categorical", "numeric", "text"]
DatetimePart = Literal["hour", "weekday", "month", "day_of_year", "elapsed_days"]
Scalar = str | int | float | bool


class Section(BaseModel):
    """Base for every spec section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RowFilter(Section):
    """One row predicate over raw columns, or `all`/`any`/`not` of others. A test names its
    `column` and exactly one of: equals, not_equals, in, not_in, between (inclusive), min,
    max (inclusive), is_null. Numbers compare as numbers; other values compare as the cell's
    text (stripped, as the reader keeps it). A missing cell passes only `is_null: true` and
    the negative tests (not_equals, not_in)."""

    column: str | None = Field(default=None, description="The raw column a test reads.")
    equals: Scalar | None = Field(default=None, description="Keep rows whose cell is this.")
    not_equals: Scalar | None = Field(default=None, description="Keep rows whose cell is not.")
    in_: list[Scalar] | None = Field(default=None, alias="in", description="Keep these values.")
    not_in: list[Scalar] | None = Field(default=None, description="Drop these values.")
    between: tuple[float, float] | None = Field(
        default=None, description="Keep numbers in [low, high]."
    )
    min: float | None = Field(default=None, description="Keep numbers >= this.")
    max: float | None = Field(default=None, description="Keep numbers <= this.")
    is_null: bool | None = Field(default=None, description="Keep missing (true) or present.")
    all: list[RowFilter] | None = Field(default=None, description="Every predicate holds.")
    any: list[RowFilter] | None = Field(default=None, description="At least one holds.")
    not_: RowFilter | None = Field(default=None, alias="not", description="The predicate fails.")

    @property
    def tests(self) -> list[str]:
        """The test keys this predicate sets (one, when it is well formed)."""
        keys = ("equals", "not_equals", "in_", "not_in", "between", "min", "max", "is_null")
        return [k for k in keys if getattr(self, k) is not None]

    @property
    def combinators(self) -> list[str]:
        return [k for k in ("all", "any", "not_") if getattr(self, k) is not None]

    @model_validator(mode="after")
    def _one_kind(self) -> RowFilter:
        tests, combinators = self.tests, self.combinators
        if combinators:
            if tests or self.column is not None or len(combinators) > 1:
                raise ValueError("a filter is either one of all/any/not, or a column with one test")
            if self.all == [] or self.any == []:
                raise ValueError("all/any need at least one predicate")
            return self
        if self.column is None:
            raise ValueError("a test needs `column` (or use all/any/not)")
        if len(tests) != 1:
            raise ValueError(
                f"column {self.column!r} needs exactly one test of equals, not_equals, in, "
                f"not_in, between, min, max, is_null (found {len(tests)})"
            )
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError(f"between for {self.column!r}: low is above high")
        return self

    def columns(self) -> list[str]:
        """Every raw column the predicate reads."""
        if self.column is not None:
            return [self.column]
        parts = self.all or self.any or ([self.not_] if self.not_ else [])
        return [c for p in parts for c in p.columns()]


class SourceSpec(Section):
    format: Literal["auto", "csv", "parquet", "jsonl"] = Field(
        default="auto", description="File format; 'auto' goes by the file suffix."
    )
    header: bool = Field(default=True, description="Whether CSV files start with a header row.")
    names: list[str] | None = Field(
        default=None, description="Column names in file order, for CSV files without a header."
    )
    rename: dict[str, str] = Field(
        default={},
        description="Header names mapped to the names the spec uses (header files, JSON "
        "lines, parquet); applied after repeated names are resolved.",
    )
    repeated_headers: Literal["error", "first", "last", "suffix"] = Field(
        default="error",
        description="A header that names a column twice: 'error' (the file is quarantined, "
        "naming the column and positions), keep the 'first' or 'last' copy, or 'suffix' the "
        "later copies as name.1, name.2, ...",
    )
    delimiter: str = Field(default=",", description="CSV field separator.")
    comment: str | None = Field(
        default=None, description="Lines starting with this text are skipped (CSV)."
    )
    missing_values: list[str] = Field(
        default=["", "NA", "?"], description="Cell texts that mean 'missing'."
    )
    bad_lines: Literal["error", "skip"] = Field(
        default="error",
        description="A CSV record whose field count differs from the header's (a row broken "
        "by an unquoted newline, a stray delimiter): 'error' quarantines the file; 'skip' "
        "keeps the rest and quarantines the skipped lines byte for byte, with line numbers.",
    )
    max_bad_lines: float = Field(
        default=0.01,
        ge=0,
        description="With bad_lines 'skip': the most lines skipped before the whole file is "
        "quarantined; a whole number is a count, a number below 1 a share of the records.",
    )
    filter: RowFilter | None = Field(
        default=None,
        description="Keep only rows that pass this predicate (over raw columns); the rows "
        "left out are counted in the ingest report.",
    )

    @model_validator(mode="after")
    def _limits(self) -> SourceSpec:
        if self.max_bad_lines >= 1 and self.max_bad_lines != int(self.max_bad_lines):
            raise ValueError("max_bad_lines: a count must be a whole number (a share is < 1)")
        targets = list(self.rename.values())
        repeated = sorted({t for t in targets if targets.count(t) > 1})
        if repeated:
            raise ValueError(f"rename maps several columns to {repeated}")
        return self


class ColumnSpec(Section):
    type: ColumnType = Field(description="How the column is read and tokenized.")
    description: str = Field(default="", description="What the column holds, for the model card.")
    values: dict[str, str] | Path | None = Field(
        default=None,
        description="Categorical codes mapped to readable values: a mapping, or a JSON file "
        "(relative to the spec) holding one. Codes not in the map are kept as written.",
    )
    format: str | None = Field(
        default=None,
        description="datetime: a strptime format such as '%d/%m/%Y %H:%M'; default ISO 8601.",
    )
    timezone: str = Field(
        default="UTC",
        description="datetime: timestamps without an offset are in this zone; ones with an "
        "offset are converted to it; hour, weekday, ... are read in it.",
    )
    features: list[DatetimePart] = Field(
        default=["hour", "weekday", "month"],
        description="datetime: the model inputs derived from it, each named <column>_<part>.",
    )
    reference: str | None = Field(
        default=None, description="datetime: the day elapsed_days counts from (ISO 8601)."
    )

    @model_validator(mode="after")
    def _options_fit_type(self) -> ColumnSpec:
        fields = type(self).model_fields
        dated = [
            k
            for k in ("format", "timezone", "features", "reference")
            if getattr(self, k) != fields[k].default
        ]
        if self.type != "datetime" and dated:
            raise ValueError(f"{dated} only apply to datetime columns")
        if self.type != "categorical" and self.values is not None:
            raise ValueError("values (a code table) only applies to categorical columns")
        if self.type == "datetime":
            if not self.features:
                raise ValueError("a datetime column needs at least one of features")
            if "elapsed_days" in self.features and self.reference is None:
                raise ValueError("elapsed_days needs reference (the day it counts from)")
        return self

    def derived(self, name: str) -> dict[str, FeatureKind]:
        """The model inputs this column becomes: itself, or a datetime's parts."""
        if self.type == "datetime":
            return {f"{name}_{part}": "numeric" for part in self.features}
        return {name: self.type}


class BinsSpec(Section):
    """Numbers into labelled bands: edges e0 < e1 < ... give '<e0', 'e0-e1', ..., 'ek+'."""

    column: str = Field(description="The numeric raw column binned.")
    edges: list[float] = Field(min_length=1, description="Ascending band edges.")
    labels: list[str] | None = Field(
        default=None, description="One name per band (len(edges) + 1), instead of the ranges."
    )

    @model_validator(mode="after")
    def _ascending(self) -> BinsSpec:
        check_bands(self.edges, self.labels)
        return self


def check_bands(edges: list[float], labels: list[str] | None) -> None:
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError("edges must be strictly ascending")
    if labels is not None and len(labels) != len(edges) + 1:
        raise ValueError(f"labels needs {len(edges) + 1} names for {len(edges)} edges")


class DeriveSpec(Section):
    """A model input computed from others: exactly one of ratio, difference or bins."""

    ratio: tuple[str, str] | None = Field(
        default=None, description="[a, b]: a / b (missing where b is 0)."
    )
    difference: tuple[str, str] | None = Field(default=None, description="[a, b]: a - b.")
    bins: BinsSpec | None = Field(default=None, description="A categorical band of a number.")
    description: str = Field(default="", description="What it means, for the model card.")

    @model_validator(mode="after")
    def _one_rule(self) -> DeriveSpec:
        rules = [r for r in ("ratio", "difference", "bins") if getattr(self, r) is not None]
        if len(rules) != 1:
            raise ValueError(f"give exactly one of ratio, difference, bins (found {rules})")
        return self

    @property
    def kind(self) -> FeatureKind:
        return "categorical" if self.bins is not None else "numeric"

    @property
    def sources(self) -> list[str]:
        if self.bins is not None:
            return [self.bins.column]
        return list(self.ratio or self.difference or ())


class AttributeSpec(Section):
    """A sensitive attribute for fairness only: kept with each batch, never a model input."""

    column: str | None = Field(
        default=None, description="The raw column it comes from (default: its own name)."
    )
    bins: list[float] | None = Field(
        default=None, description="Band edges for a numeric column, e.g. [25, 45, 65]."
    )
    labels: list[str] | None = Field(default=None, description="Names of the bands.")
    merge: dict[str, list[str]] = Field(
        default={},
        description="Groups formed from several values, e.g. {Other: [Amer-Indian-Eskimo, "
        "Other]}; values not named keep their own group.",
    )

    @model_validator(mode="after")
    def _bands(self) -> AttributeSpec:
        if self.bins is not None:
            check_bands(self.bins, self.labels)
            if self.merge:
                raise ValueError("give bins (numbers) or merge (categories), not both")
        elif self.labels is not None:
            raise ValueError("labels name the bands of bins")
        return self


class LabelSpec(Section):
    column: str = Field(description="The column to predict.")
    positive: str = Field(description="The label value that counts as the positive class.")
    negative: str = Field(description="The other label value (binary classification).")
    aliases: dict[str, str] = Field(
        default={},
        description="Label spellings mapped to canonical values, e.g. '>50K.' -> '>50K'.",
    )
    values: dict[str, list[str]] = Field(
        default={},
        description="Raw values that make up each class, keyed by `positive` or `negative`: "
        "'class A vs class B' out of a many-valued column.",
    )
    other: Literal["error", "drop"] = Field(
        default="error",
        description="A label value that is neither class: 'error' quarantines the file "
        "naming the values; 'drop' leaves those rows out (counted in the ingest report).",
    )
    allow_unlabelled_batches: bool = Field(
        default=False,
        description="Accept batches without the label column: used for pretraining, and "
        "scored by the `score` flow.",
    )

    @model_validator(mode="after")
    def _classes(self) -> LabelSpec:
        if self.positive == self.negative:
            raise ValueError("positive and negative must differ")
        unknown = set(self.values) - {self.positive, self.negative}
        if unknown:
            raise ValueError(
                f"values keys must be {self.positive!r} or {self.negative!r}, not {sorted(unknown)}"
            )
        both = set(self.values.get(self.positive, [])) & set(self.values.get(self.negative, []))
        if both:
            raise ValueError(f"values {sorted(both)} are listed under both classes")
        return self

    def mapping(self) -> dict[str, str]:
        """Every raw spelling to its class: aliases, then the grouped values."""
        grouped = {raw: label for label, raws in self.values.items() for raw in raws}
        return {**self.aliases, **grouped}


def resolved_values(column: ColumnSpec, base: Path) -> ColumnSpec:
    """A column whose code table names a JSON file, with the table read in: the spec's digest
    then covers the codes themselves, not where the file lives."""
    if not isinstance(column.values, Path):
        return column
    path = column.values if column.values.is_absolute() else base / column.values
    try:
        table: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"code table {path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"code table {path} is not valid JSON: {exc}") from None
    cells = (str, int, float)
    if not isinstance(table, dict) or not all(isinstance(v, cells) for v in table.values()):
        raise ValueError(f"code table {path} must be one JSON object of code -> value")
    return column.model_copy(update={"values": {str(k): str(v) for k, v in table.items()}})
