"""Rows as sensitive groups: what fairness assessment, live monitoring and shadow scoring all
split decisions by, so a group is spelled the same everywhere."""

from __future__ import annotations

import pandas as pd

INTERSECTION = " x "  # joins feature names (and values) for the intersection of all of them


def group_values(frame: pd.DataFrame, feature: str) -> pd.Series:
    """A sensitive feature's groups as strings, missing as 'missing'."""
    return frame[feature].astype("string").fillna("missing").reset_index(drop=True)


def cells(frame: pd.DataFrame, features: list[str]) -> pd.Series:
    """Each row's group in the intersection of `features` ('Female x Black'; for one feature,
    its group)."""
    joined = group_values(frame, features[0])
    for f in features[1:]:
        joined = joined + INTERSECTION + group_values(frame, f)
    return joined


def sensitive_columns(frame: pd.DataFrame, features: list[str]) -> dict[str, pd.Series]:
    """Each sensitive feature's groups, plus their intersection when there is more than one."""
    columns = {f: group_values(frame, f) for f in features}
    if len(features) > 1:
        columns[INTERSECTION.join(features)] = cells(frame, features)
    return columns
