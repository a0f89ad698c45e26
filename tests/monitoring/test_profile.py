"""The reference profile: a JSON round trip loses nothing, building is deterministic, mostly-zero
numbers and rare or missing categories still give a valid profile, and a bad file says so."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from assay.data.reader import read_table
from assay.errors import AssayError
from assay.serving.profile import (
    MAX_CATEGORIES,
    MISSING,
    OTHER,
    SAMPLE_ROWS,
    ReferenceProfile,
    build_profile,
)
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def train(adult_spec) -> pd.DataFrame:
    return read_table(ROOT / "data" / "adult.data.gz", adult_spec)


@pytest.fixture(scope="module")
def profile(train, adult_spec) -> ReferenceProfile:
    scores = 1 / (1 + np.exp(-(train["education_num"].to_numpy() - 10) / 2))
    return build_profile(train, adult_spec, scores)


def test_profile_round_trips_through_json_exactly(profile, tmp_path):
    path = profile.save(tmp_path / "profile.json")
    loaded = ReferenceProfile.load(path)
    assert loaded == profile
    assert loaded.to_dict() == profile.to_dict()
    assert json.loads(path.read_text(encoding="utf-8")) == profile.to_dict()


def test_building_twice_gives_the_identical_profile(profile, train, adult_spec):
    scores = 1 / (1 + np.exp(-(train["education_num"].to_numpy() - 10) / 2))
    again = build_profile(train.copy(), adult_spec, scores.copy())
    assert again.to_dict() == profile.to_dict()


def test_every_numeric_profile_is_valid_and_text_free(profile, adult_spec, train):
    assert set(profile.numeric) == set(adult_spec.columns_of_type("numeric"))
    assert set(profile.categorical) == set(adult_spec.columns_of_type("categorical"))
    for name, column in [*profile.numeric.items(), ("prediction", profile.prediction)]:
        assert column.edges == sorted(set(column.edges)), name
        assert len(column.shares) == len(column.edges) + 1, name
        assert sum(column.shares) + column.missing == pytest.approx(1), name
        assert len(column.sample) == SAMPLE_ROWS, name
    assert profile.numeric["age"].edges == [22.0, 26.0, 30.0, 33.0, 37.0, 41.0, 45.0, 50.0, 58.0]
    assert profile.rows == len(train)
    assert profile.label_rate == pytest.approx(7841 / 32561)


def test_mostly_zero_capital_gain_gets_a_bin_of_its_own(profile, train):
    gain = profile.numeric["capital_gain"]
    # 92% zeros: every inner quantile but none is 0, so the edges collapse to one
    assert gain.edges == [0.0]
    assert gain.shares == pytest.approx(
        [(train["capital_gain"] == 0).mean(), (train["capital_gain"] > 0).mean()]
    )
    assert gain.missing == 0


def test_categories_keep_missing_apart_and_fold_rare_ones_into_other(toy_spec):
    # 60 colours, colour c<i> appearing 100 - i times, plus 30 missing cells
    colours = [f"c{i:02d}" for i in range(60) for _ in range(100 - i)]
    frame = pd.DataFrame(
        {
            "x": np.arange(len(colours) + 30, dtype=float),
            "colour": pd.array([*colours, *[None] * 30], dtype="string"),
        }
    )
    total = len(frame)
    shares = build_profile(frame, toy_spec).categorical["colour"].shares
    assert len(shares) == MAX_CATEGORIES + 2
    assert shares["c00"] == 100 / total
    assert "c49" in shares and "c50" not in shares
    assert shares[OTHER] == pytest.approx(sum(100 - i for i in range(50, 60)) / total)
    assert shares[MISSING] == 30 / total
    assert sum(shares.values()) == pytest.approx(1)


def test_missing_numbers_and_labels(toy_spec):
    frame = pd.DataFrame(
        {
            "x": [1.0, np.nan, 3.0, np.nan],
            "colour": ["a", "b", "a", None],
            "y": pd.array(["yes", None, "no", "no"], dtype="string"),
        }
    )
    profile = build_profile(frame, toy_spec)
    assert profile.numeric["x"].missing == 0.5
    assert sorted(profile.numeric["x"].sample) == [1.0, 3.0]
    assert profile.categorical["colour"].shares == {"a": 0.5, "b": 0.25, OTHER: 0.0, MISSING: 0.25}
    assert profile.label_rate == pytest.approx(1 / 3)
    assert profile.prediction is None
    assert build_profile(frame.drop(columns="y"), toy_spec).label_rate is None


def test_scores_must_match_the_rows(toy_spec):
    frame = pd.DataFrame({"x": [1.0, 2.0], "colour": ["a", "b"]})
    with pytest.raises(AssayError, match="3 scores for 2 reference rows"):
        build_profile(frame, toy_spec, np.array([0.1, 0.2, 0.3]))


@pytest.mark.parametrize("content", [None, "{not json", '{"rows": 3}', "[1, 2]"])
def test_a_missing_or_malformed_profile_file_is_an_assay_error(tmp_path, content):
    path = tmp_path / "profile.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(AssayError, match=re.escape(str(path))):
        ReferenceProfile.load(path)
