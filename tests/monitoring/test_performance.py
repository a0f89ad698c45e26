"""Live performance: accuracy and Fairlearn disparities on the labelled rows match a hand-worked
example, unlabelled rows are left out, and `degraded` flips at the configured accuracy drop."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay.config import Spec
from assay.errors import AssayError
from assay.monitoring.performance import live_performance

# Group a: every decision right. Group b: positives decided 1,0 and negatives 1,1, so
# TPR a=1 b=0.5, FPR a=0 b=1: equalized odds difference max(0.5, 1) = 1. Selection a=0.5
# b=0.75. The last row has no label yet; its (wrong-looking) decision must not count.
FRAME = pd.DataFrame(
    {
        "x": np.arange(9.0),
        "sex": pd.array([*"aaaa", *"bbbb", None], dtype="string"),
        "y": pd.array(["yes", "yes", "no", "no", "yes", "yes", "no", "no", None], dtype="string"),
    }
)
DECISIONS = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1])


@pytest.fixture
def spec(tmp_path) -> Spec:
    return Spec.model_validate(
        {
            "name": "toy",
            "columns": {"x": {"type": "numeric"}, "sex": {"type": "categorical"}},
            "label": {"column": "y", "positive": "yes", "negative": "no"},
            "sensitive_features": ["sex"],
            "split": {"rule": "random"},
            "expectations": tmp_path / "suite.json",
            "monitoring": {"accuracy_drop": 0.1},
        }
    )


def test_accuracy_and_disparities_match_the_hand_worked_example(spec):
    live = live_performance(FRAME, DECISIONS, spec, reference_accuracy=0.7)
    assert live.rows == 8
    assert live.accuracy == pytest.approx(5 / 8)
    assert live.drop == pytest.approx(0.075)
    assert live.fairness == {
        "sex": {
            "equalized_odds_difference": pytest.approx(1.0),
            "demographic_parity_difference": pytest.approx(0.25),
        }
    }
    raw = json.loads(json.dumps(live.to_dict()))
    assert raw["degraded"] is False and raw["reason"] == live.reason


@pytest.mark.parametrize(
    ("reference", "degraded", "reason"),
    [(0.72, False, "live accuracy 0.6250 on 8 labelled rows, within 0.1 below the champion's 0.7200"),
     (0.73, True, "live accuracy 0.6250 on 8 labelled rows, more than 0.1 below the champion's 0.7300")],
)  # fmt: skip
def test_degraded_flips_at_the_configured_drop(spec, reference, degraded, reason):
    live = live_performance(FRAME, DECISIONS, spec, reference_accuracy=reference)
    assert live.degraded is degraded
    assert live.reason == reason


def test_no_labelled_rows_means_nothing_to_measure(spec):
    unlabelled = FRAME.assign(y=pd.array([None] * 9, dtype="string"))
    assert live_performance(unlabelled, DECISIONS, spec, 0.8) is None
    assert live_performance(FRAME.drop(columns="y"), DECISIONS, spec, 0.8) is None


def test_one_decision_per_row(spec):
    with pytest.raises(AssayError, match="8 decisions for 9 rows"):
        live_performance(FRAME, DECISIONS[:8], spec, 0.8)
