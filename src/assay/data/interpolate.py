"""Synthetic rows between pairs of real rows: inputs for a student to learn a teacher's outputs
on when the real pool is small (a private spec distilling on its public validation rows alone).

Each synthetic row joins two real rows drawn at random: every number lies on the line between
the pair's (rounded where the real column holds whole numbers; missing when either is), every
category is one of the pair's, chosen by a fair coin. The rows carry no label: the student
learns only the teacher's outputs on them, which is how MUNGE fed model compression (Bucilă,
Caruana and Niculescu-Mizil, "Model compression", KDD 2006). Drawn from public rows and
labelled by a released teacher, they are post-processing and spend no privacy budget.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def interpolated_rows(
    real: pd.DataFrame, numeric: list[str], count: int, seed: int
) -> pd.DataFrame:
    """`count` seeded rows, each between two of `real`'s rows, with `real`'s columns and dtypes."""
    if count == 0 or real.empty:
        return real.iloc[:0]
    rng = np.random.default_rng(seed)
    first = real.iloc[rng.integers(0, len(real), count)].reset_index(drop=True)
    second = real.iloc[rng.integers(0, len(real), count)].reset_index(drop=True)
    rows = first.copy()
    for name in real.columns:
        if name in numeric:
            where = rng.random(count)
            line = first[name].astype(float) * (1 - where) + second[name].astype(float) * where
            whole = bool(np.all(np.mod(real[name].dropna(), 1) == 0))
            rows[name] = line.round() if whole else line
        else:
            rows[name] = first[name].where(rng.random(count) < 0.5, second[name])
    return rows.astype(real.dtypes.to_dict())
