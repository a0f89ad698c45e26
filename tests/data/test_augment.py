"""Synthetic rows for scarce groups: drawn only for groups under the share, each group and label
grown alike, never a copy of a real row, seeded; bad settings are one clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assay.config import Spec, load_spec
from assay.data.augment import ClosestRecord, augment_rows
from assay.errors import SpecError
from tests.synthetic import rows, write_dataset

COLUMNS = {
    "income_k": {"type": "numeric"},
    "tenure": {"type": "numeric"},
    "region": {"type": "categorical"},
    "home_owner": {"type": "categorical"},
}


def spec_with(tmp_path, augment: dict | None, **extra) -> Spec:
    return Spec.model_validate(
        {
            "name": "churn",
            "columns": extra.pop("columns", COLUMNS),
            "label": {"column": "churned", "positive": "yes", "negative": "no"},
            "sensitive_features": ["home_owner", "region"],
            "split": {"rule": "random"},
            "expectations": tmp_path / "suite.json",
            **({"augment": augment} if augment is not None else {}),
            **extra,
        }
    )


def frame(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """home_owner 'unknown' holds about 1% of the rows; region's four groups about 25% each."""
    raw = rows(n, positive_share=0.3, signal=2.0, seed=seed)
    return raw.astype({c: "string" for c in ("region", "home_owner", "churned")})


def test_only_scarce_groups_grow_and_each_label_grows_alike(tmp_path):
    train = frame()
    spec = spec_with(tmp_path, {"groups": ["home_owner", "region"], "factor": 3.0})
    out = augment_rows(train, spec)
    synthetic = out.rows.iloc[len(train) :]
    assert out.rows.iloc[: len(train)].equals(train)  # the real rows first, untouched
    assert set(synthetic["home_owner"]) == {"unknown"}  # region's groups are not scarce
    real = train[train["home_owner"] == "unknown"]["churned"].value_counts()
    made = synthetic["churned"].value_counts()
    for label, count in real.items():
        if count > 5:  # k_neighbors: smaller cells are left as they are
            assert made[label] + out.report["groups"][0]["copies_dropped"] >= 2 * count - 1
    assert out.report["synthetic_rows"] == len(synthetic) > 0
    assert (synthetic["tenure"] == synthetic["tenure"].round()).all()  # whole numbers stay whole
    assert (synthetic["income_k"] != synthetic["income_k"].round()).any()
    assert out.rows.dtypes.equals(train.dtypes)
    distance = ClosestRecord(train, ["income_k", "tenure"]).to_real(synthetic)
    assert distance.min() > spec.augment.min_distance  # no synthetic row copies a real one
    [group] = out.report["groups"]
    assert group["group"] == "unknown" and group["real_rows"] == real.sum()
    assert group["closest_real_min"] > spec.augment.min_distance


def test_the_same_seed_draws_the_same_rows(tmp_path):
    spec = spec_with(tmp_path, {"groups": ["home_owner"]})
    first, again = augment_rows(frame(), spec), augment_rows(frame(), spec)
    pd.testing.assert_frame_equal(first.rows, again.rows)
    other = spec.model_copy(update={"split": spec.split.model_copy(update={"seed": 7})})
    assert not augment_rows(frame(), other).rows.equals(first.rows)


def test_copies_of_real_rows_are_dropped_and_counted(tmp_path):
    train = frame()
    scarce = train["home_owner"] == "unknown"
    # every scarce row the same: any row drawn between two of them is a copy
    train.loc[scarce, ["income_k", "tenure", "region", "churned"]] = [40.0, 3.0, "north", "no"]
    out = augment_rows(train, spec_with(tmp_path, {"groups": ["home_owner"]}))
    [group] = out.report["groups"]
    assert group["synthetic_rows"] == 0 and group["copies_dropped"] == scarce.sum()
    assert len(out.rows) == len(train) and out.report["copies_dropped"] == scarce.sum()


def test_a_cell_too_small_to_draw_in_is_named_and_left(tmp_path):
    train = frame(2000)
    out = augment_rows(train, spec_with(tmp_path, {"groups": ["home_owner"], "k_neighbors": 30}))
    assert len(out.rows) == len(train)
    assert any(s.startswith("home_owner=unknown, churned=") for s in out.report["left_as_they_are"])


def test_missing_categories_stay_missing_and_all_categorical_data_works(tmp_path):
    train = frame().drop(columns=["income_k", "tenure"])
    train.loc[train.index[::7], "region"] = pd.NA
    columns = {k: v for k, v in COLUMNS.items() if v["type"] == "categorical"}
    out = augment_rows(train, spec_with(tmp_path, {"groups": ["home_owner"]}, columns=columns))
    synthetic = out.rows.iloc[len(train) :]
    assert "\x00missing" not in set(synthetic["region"].dropna())
    assert np.isin(synthetic["region"].dropna(), ["north", "south", "east", "west"]).all()
    # with four categorical cells a draw is often a copy: the check still applies
    assert out.report["copies_dropped"] + out.report["synthetic_rows"] > 0


def test_without_the_section_nothing_changes(tmp_path):
    train = frame(500)
    out = augment_rows(train, spec_with(tmp_path, None))
    assert out.rows is train and out.report == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"augment": {"groups": ["region"]}}, "augment.groups: ['region'] are not sensitive"),
        (
            {"augment": {"groups": ["home_owner"]}, "privacy": {"epsilon": 3.0}},
            "augment and privacy together are refused: synthetic rows are drawn from the "
            "private rows without noise",
        ),
        ({"augment": {"groups": ["home_owner"], "factor": 1.0}}, "augment.factor: "),
        ({"augment": {"groups": ["home_owner"], "method": "gan"}}, "augment.method: "),
        ({"augment": {"method": "smote_nc"}}, "augment.groups: "),
    ],
)
def test_bad_augment_settings_are_one_clear_line(tmp_path, change, message):
    path = write_dataset(tmp_path / "churn", spec=change)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(path) in str(caught.value)
