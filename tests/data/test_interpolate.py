"""Synthetic rows between pairs of real rows: numbers on the pair's line (whole where the column
is), categories from the pair, missing numbers stay missing, the same seed the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from assay.data.interpolate import interpolated_rows


def real_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": pd.array([20, 30, 40, 50], dtype="int64"),
            "score": [0.5, np.nan, 2.5, 3.0],
            "colour": pd.array(["red", "blue", None, "green"], dtype="string"),
        }
    )


def test_each_row_lies_between_two_real_rows():
    real = real_rows()
    rows = interpolated_rows(real, ["age", "score"], 500, seed=0)
    assert len(rows) == 500 and rows.dtypes.equals(real.dtypes)
    assert rows["age"].between(20, 50).all()
    assert len(set(rows["age"])) > 4  # between the rows, not only copies of them
    present = rows["score"].dropna()
    assert present.between(0.5, 3.0).all() and (np.mod(present, 1) != 0).any()
    assert rows["score"].isna().any()  # a pair with a missing number gives a missing number
    assert set(rows["colour"].dropna()) <= {"red", "blue", "green"}


def test_the_same_seed_gives_the_same_rows_and_none_asked_gives_none():
    real = real_rows()
    again = interpolated_rows(real, ["age", "score"], 50, seed=3)
    pd.testing.assert_frame_equal(again, interpolated_rows(real, ["age", "score"], 50, seed=3))
    assert not again.equals(interpolated_rows(real, ["age", "score"], 50, seed=4))
    assert interpolated_rows(real, ["age"], 0, seed=0).empty
