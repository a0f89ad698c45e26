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
    rows: list = [
        E.ExpectTableRowCountToBeBetween(min_value=1, severity="critical"),
        E.ExpectTableColumnsToMatchSet(
            column_set=[c for c in spec.required_columns if c in reference.columns],
            exact_match=True,
            severity="warning",
        ),
    ]
    kinds = {**spec.features, **dict.fromkeys(spec.attribute_columns, "categorical")}
    for name, kind in kinds.items():
        values = reference[name]
        null_rate = float(values.isna().mean())
        if null_rate < 1:
            rows.append(
                E.ExpectColumnValuesToNotBeNull(
                    column=name, mostly=_floor(1 - null_rate - null_margin), severity="warning"
                )
            )
        if kind == "numeric" and values.notna().any():
            low, high = float(values.min()), float(values.max())
            pad = (high - low) * range_margin
            floor = low - pad if low < 0 else max(0.0, low - pad)
            rows.append(
                E.ExpectColumnValuesToBeBetween(
                    column=name, min_value=floor, max_value=high + pad, severity="warning"
                )
            )
        elif kind == "categorical":
            observed = sorted(values.dropna().unique().tolist())
            if 0 < len(observed) <= max_categories:
                rows.append(
                    E.ExpectColumnValuesToBeInSet(
                        column=name,
                        value_set=observed,
                        mostly=_floor(1 - unknown_category_rate),
                        severity="critical",
                    )
                )
    label = spec.label
    if label.column in reference.columns:
        unlabelled = float(reference[label.column].isna().mean())
        mostly = 1.0 if unlabelled == 0 else _floor(1 - unlabelled - null_margin)
        rows += [
            E.ExpectColumnValuesToNotBeNull(
                column=label.column, mostly=mostly, severity="critical"
            ),
            E.ExpectColumnValuesToBeInSet(
                column=label.column, value_set=[label.negative, label.positive], severity="critical"
            ),
        ]
    return gx.ExpectationSuite(
        name=spec.name,
        expectations=rows,
        meta={
            "assay": {
                "suggested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "reference_rows": len(reference),
                "status": "draft: review every expectation before use",
            }
        },
    )


def _floor(x: float) -> float:
    """Round a `mostly` down to 3 decimals, clamped to [0, 1], so the reference passes."""
    return max(0.0, min(1.0, int(x * 1000) / 1000))
