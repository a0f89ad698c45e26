"""Draft a suite from a reference sample, for a person to review before it gates anything.

What is drafted and why:
- row count >= 1 and the exact column set: a batch must be data of this dataset;
- the checks below for every model input (a datetime's parts and derived columns included) and
  every fairness attribute, as the batch holds them;
- each categorical value set as observed, critical with `mostly`: unknown categories above the
  allowed rate mean the data changed meaning, a few are normal;
- numeric ranges as observed, widened by a margin (never below 0 for a column the reference
  never has negative: a count that came out ">= -2" admitted nonsense), as warnings: new
  extremes are worth a look;
- null rates as observed plus a margin, as warnings;
- the label: only the spec's two values (critical), and null no more often than in the
  reference plus the margin (critical; never null when the reference never is): a suite must
  accept the file it was drafted from, unlabelled rows included.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from assay.config import Spec
from assay.validation.suite import gx

E = gx.expectations
Expectations = list[E.Expectation]


def suggest(
    reference: pd.DataFrame,
    spec: Spec,
    *,
    unknown_category_rate: float = 0.01,
    null_margin: float = 0.02,
    range_margin: float = 0.1,
    max_categories: int = 200,
) -> gx.ExpectationSuite:
    """Expectations that the reference sample itself passes, with margins for normal change."""
    rows = _table_checks(reference, spec)
    kinds = {**spec.features, **dict.fromkeys(spec.attribute_columns, "categorical")}
    for name, kind in kinds.items():
        values = reference[name]
        rows += _null_checks(name, values, null_margin)
        if kind == "numeric" and values.notna().any():
            rows.append(_range_check(name, values, range_margin))
        elif kind == "categorical":
            rows += _category_checks(name, values, unknown_category_rate, max_categories)
    rows += _label_checks(reference, spec, null_margin)
    return gx.ExpectationSuite(name=spec.name, expectations=rows, meta=_draft_meta(reference))


def _table_checks(reference: pd.DataFrame, spec: Spec) -> Expectations:
    """At least one row and exactly the spec's columns the reference holds: a batch must be data
    of this dataset."""
    return [
        E.ExpectTableRowCountToBeBetween(min_value=1, severity="critical"),
        E.ExpectTableColumnsToMatchSet(
            column_set=[c for c in spec.required_columns if c in reference.columns],
            exact_match=True,
            severity="warning",
        ),
    ]


def _null_checks(name: str, values: pd.Series, null_margin: float) -> Expectations:
    """The column's observed null rate plus the margin, as a warning; none for a column the
    reference never fills."""
    null_rate = float(values.isna().mean())
    if null_rate < 1:
        return [
            E.ExpectColumnValuesToNotBeNull(
                column=name, mostly=_floor(1 - null_rate - null_margin), severity="warning"
            )
        ]
    return []


def _range_check(name: str, values: pd.Series, range_margin: float) -> E.Expectation:
    """The observed range widened by the margin, never below 0 for a column the reference never
    has negative, as a warning: new extremes are worth a look."""
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * range_margin
    floor = low - pad if low < 0 else max(0.0, low - pad)
    return E.ExpectColumnValuesToBeBetween(
        column=name, min_value=floor, max_value=high + pad, severity="warning"
    )


def _category_checks(
    name: str, values: pd.Series, unknown_category_rate: float, max_categories: int
) -> Expectations:
    """The observed value set, critical with `mostly`: a few unknown categories are normal, more
    mean the data changed meaning. None for a column with no values or too many to list."""
    observed = sorted(values.dropna().unique().tolist())
    if not 0 < len(observed) <= max_categories:
        return []
    return [
        E.ExpectColumnValuesToBeInSet(
            column=name,
            value_set=observed,
            mostly=_floor(1 - unknown_category_rate),
            severity="critical",
        )
    ]


def _label_checks(reference: pd.DataFrame, spec: Spec, null_margin: float) -> Expectations:
    """The label's two values, and nulls no more often than in the reference plus the margin
    (never when the reference has none), both critical; none when the reference has no label."""
    label = spec.label
    if label.column not in reference.columns:
        return []
    unlabelled = float(reference[label.column].isna().mean())
    mostly = 1.0 if unlabelled == 0 else _floor(1 - unlabelled - null_margin)
    return [
        E.ExpectColumnValuesToNotBeNull(column=label.column, mostly=mostly, severity="critical"),
        E.ExpectColumnValuesToBeInSet(
            column=label.column, value_set=[label.negative, label.positive], severity="critical"
        ),
    ]


def _draft_meta(reference: pd.DataFrame) -> dict[str, dict[str, object]]:
    """When and from how many rows the suite was drafted, and that it is a draft to review."""
    return {
        "assay": {
            "suggested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "reference_rows": len(reference),
            "status": "draft: review every expectation before use",
        }
    }


def _floor(x: float) -> float:
    """Round a `mostly` down to 3 decimals, clamped to [0, 1], so the reference passes."""
    return max(0.0, min(1.0, int(x * 1000) / 1000))
