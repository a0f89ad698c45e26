"""Drift: PSI matches a hand calculation; an unshifted Adult batch is quiet, an aged one names
age and nothing else, a small batch is not judged, and shifted scores show as prediction drift."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from assay.config import MonitoringSpec, Spec
from assay.data.reader import read_table
from assay.errors import AssayError
from assay.monitoring.drift import FLOOR, compare, psi
from assay.serving.profile import MISSING, OTHER, ReferenceProfile, build_profile
from tests.conftest import ROOT


def _scores(frame: pd.DataFrame) -> np.ndarray:
    """A stand-in model: P(>50K) rising with education and age."""
    z = (frame["education_num"].to_numpy() - 10) / 2 + (frame["age"].to_numpy() - 38) / 15
    return 1 / (1 + np.exp(-z))


@pytest.fixture(scope="module")
def profile(adult_spec) -> ReferenceProfile:
    train = read_table(ROOT / "data" / "adult.data.gz", adult_spec)
    return build_profile(train, adult_spec, _scores(train))


@pytest.fixture(scope="module")
def batch(adult_spec) -> pd.DataFrame:
    """2,000 rows of adult.test: the same population the profile was built on."""
    test = read_table(ROOT / "data" / "adult.test.gz", adult_spec)
    return test.sample(2000, random_state=0).reset_index(drop=True)


def test_psi_matches_the_hand_calculation():
    # (0.25 - 0.5) ln(0.5) + (0.75 - 0.5) ln(1.5) = 0.25 ln 3
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(0.25 * math.log(3))
    # an empty reference bin is floored, not infinite
    empty = (0.4 - 0.5) * math.log(0.8) + (0.1 - FLOOR) * math.log(0.1 / FLOOR)
    assert psi(np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.5, 0.1])) == pytest.approx(empty)
    assert psi(np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])) == 0


def test_an_unshifted_batch_is_not_drift(profile, batch, adult_spec):
    report = compare(profile, batch, adult_spec, _scores(batch))
    assert report.judged and not report.detected
    assert report.drifted == []
    assert max(f.psi for f in report.checks) < 0.05
    assert report.reason == "no drift in 14 features and the prediction over 2,000 rows"


def test_an_aged_batch_drifts_in_age_only(profile, batch, adult_spec):
    report = compare(profile, batch.assign(age=batch["age"] + 15), adult_spec)
    assert report.detected
    assert report.drifted == ["age"]
    age = report.features[0]
    assert (age.feature, age.kind, age.test) == ("age", "numeric", "ks")
    assert age.psi > 1 and age.p_value < 1e-100
    assert re.fullmatch(r"drift in age \(PSI [\d.]+, KS p=[\de.-]+\)", report.reason)
    assert report.prediction is None


def test_a_small_batch_is_reported_but_not_judged(profile, batch, adult_spec):
    small = batch.head(50)
    report = compare(profile, small.assign(age=small["age"] + 15), adult_spec)
    assert not report.judged and not report.detected
    assert report.reason == "50 rows: below the 200 rows needed to judge drift"
    assert len(report.features) == 14


def test_shifted_scores_are_prediction_drift(profile, batch, adult_spec):
    shifted = np.clip(_scores(batch) + 0.3, 0, 1)
    report = compare(profile, batch, adult_spec, shifted)
    assert report.detected and report.drifted == ["prediction"]
    assert report.prediction.kind == "prediction"
    assert report.reason.startswith("drift in prediction (PSI ")


def test_scores_without_a_reference_prediction_are_ignored(batch, adult_spec):
    profile = build_profile(batch, adult_spec)
    report = compare(profile, batch, adult_spec, _scores(batch))
    assert report.prediction is None
    assert report.drifted == []


def test_report_serialises_for_json_and_the_table_artifact(profile, batch, adult_spec):
    report = compare(profile, batch, adult_spec, _scores(batch))
    raw = json.loads(json.dumps(report.to_dict()))
    assert raw["detected"] is False and raw["reason"] == report.reason
    table = report.table()
    assert [row["feature"] for row in table][-1] == "prediction"
    assert set(table[0]) == {"feature", "kind", "PSI", "test", "p-value", "drifted"}
    assert len(table) == 15


def test_a_missing_column_is_named(profile, batch, adult_spec):
    with pytest.raises(AssayError, match=r"the batch lacks column\(s\): age, sex"):
        compare(profile, batch.drop(columns=["age", "sex"]), adult_spec)


@pytest.fixture
def colour_spec(toy_spec) -> Spec:
    return toy_spec.model_copy(update={"monitoring": MonitoringSpec(min_rows=10)})


def test_unseen_categories_count_as_other(colour_spec):
    reference = pd.DataFrame({"x": np.arange(400.0), "colour": ["red", "blue"] * 200})
    profile = build_profile(reference, colour_spec)
    # half red, a quarter purple and a quarter gold (both unseen), none missing
    batch = pd.DataFrame({"x": np.arange(400.0), "colour": ["red", "purple", "red", "gold"] * 100})
    colour = compare(profile, batch, colour_spec).features[1]
    assert list(profile.categorical["colour"].shares) == ["blue", "red", OTHER, MISSING]
    expected = psi(np.array([0.5, 0.5, 0, 0]), np.array([0, 0.5, 0.5, 0]))
    assert colour.psi == pytest.approx(expected)
    assert colour.test == "chi-square" and colour.drifted
    assert colour.p_value < 1e-10
