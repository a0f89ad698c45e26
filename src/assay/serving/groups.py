"""Rows as sensitive groups: what fairness assessment, live monitoring and shadow scoring all
split decisions by, so a group is spelled the same everywhere."""

from __future__ import annotations

import pandas as pd

INTERSECTION = " x "  # joins feature names (and values) for the intersection of all of them


def sensitive_columns(frame: pd.DataFrame, features: list[str]) -> dict[str, pd.Series]:
    """Each sensitive feature as strings (missing as 'missing'), plus their intersection when
    there is more than one."""
    columns = {
        f: frame[f].astype("string").fillna("missing").reset_index(drop=True) for f in features
    }
    if len(features) > 1:
        joined = columns[features[0]]
        for f in features[1:]:
            joined = joined + INTERSECTION + columns[f]
        columns[INTERSECTION.join(features)] = joined
    return columns
