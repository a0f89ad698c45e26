"""The ensemble the student learns from: weights chosen by validation log loss, never worse
there than its best member, a useless member left out, and a teacher alone left as it is."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from assay.compression.ensemble import EnsembleTeacher, fit_ensemble, log_odds, simplex


def _members(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Two informative members with independent errors and one pure-noise member."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * truth))).astype(int)
    return {
        "teacher": 2 * truth + rng.normal(scale=1.5, size=n),
        "boosting": 2 * truth + rng.normal(scale=1.5, size=n),
        "noise": rng.normal(scale=3, size=n),
    }, y


def test_the_grid_covers_the_simplex():
    assert len(simplex(2)) == 11 and len(simplex(3)) == 66
    assert all(sum(w) == pytest.approx(1) for w in simplex(3))


def test_weights_follow_the_validation_rows_and_beat_every_member_there():
    valid, y = _members(4000, 0)
    ensemble = fit_ensemble(valid, y)
    assert ensemble.weights["noise"] == 0
    assert 0.3 <= ensemble.weights["teacher"] <= 0.7
    for name, z in valid.items():
        alone = log_loss(y, 1 / (1 + np.exp(-z)))
        assert ensemble.valid_log_loss <= alone, name
    # and it carries over to new rows drawn the same way
    test, y_test = _members(4000, 1)
    mixed = log_loss(y_test, ensemble.predict_proba(test))
    assert mixed < min(log_loss(y_test, 1 / (1 + np.exp(-z))) for z in test.values())
    assert fit_ensemble(valid, y) == ensemble  # deterministic


def test_log_odds_stay_finite_for_sure_members():
    z = log_odds(np.array([0.0, 0.5, 1.0]))
    assert np.all(np.isfinite(z)) and z[1] == 0 and z[0] == pytest.approx(-z[2])


def test_the_teacher_alone_is_left_as_it_is():
    frame = pd.DataFrame({"x": [-1.0, 0.0, 2.0]})
    alone = EnsembleTeacher.alone("teacher", lambda f: f["x"].to_numpy())
    np.testing.assert_allclose(alone.log_odds(frame), [-1.0, 0.0, 2.0])
    logits = alone.logits(frame)
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], [-1.0, 0.0, 2.0])
    assert alone.ensemble.weights == {"teacher": 1.0}


def test_members_with_weight_zero_are_not_scored():
    frame = pd.DataFrame({"x": np.linspace(-2, 2, 400)})
    y = (frame["x"] > 0).astype(int).to_numpy()
    calls: list[str] = []

    def member(name: str, scale: float):
        def score(f: pd.DataFrame) -> np.ndarray:
            calls.append(name)
            return scale * f["x"].to_numpy()

        return score

    rng = np.random.default_rng(0)
    noisy = {"good": member("good", 3.0), "bad": lambda f: rng.normal(size=len(f))}
    source = EnsembleTeacher.fit(noisy, frame, y)
    assert source.ensemble.weights["bad"] == 0
    calls.clear()
    source.predict_proba(frame)
    assert calls == ["good"]
