"""Temperature scaling recovers a known temperature and lowers ECE; ECE matches a hand count;
the reliability diagram is a PNG; the module imports only numpy at load time."""

from __future__ import annotations

import numpy as np
import pytest

from assay.responsible.calibration import (
    expected_calibration_error,
    fit_temperature,
    reliability_diagram,
)
from assay.serving.policy import apply_temperature

TRUE_TEMPERATURE = 2.5


def _overconfident(n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose labels follow softmax(z / 2.5): taken at T = 1 they are overconfident."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 4.0, size=(n, 2))
    y = (rng.random(n) < apply_temperature(logits, TRUE_TEMPERATURE)).astype(int)
    return logits, y


def test_fit_temperature_recovers_the_simulated_temperature():
    logits, y = _overconfident()
    assert fit_temperature(logits, y) == pytest.approx(TRUE_TEMPERATURE, abs=0.15)


def test_apply_temperature_one_is_the_softmax():
    logits = np.array([[0.0, 0.0], [1.0, 3.0], [-2.0, 0.5]])
    expected = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    np.testing.assert_allclose(apply_temperature(logits, 1.0), expected, rtol=1e-12)


def test_apply_temperature_survives_logits_that_overflow_exp():
    np.testing.assert_allclose(apply_temperature(np.array([[800.0, -800.0]]), 1.0), [0.0])


def test_apply_temperature_rejects_a_non_positive_temperature():
    with pytest.raises(ValueError, match=r"temperature must be > 0, got 0\.0"):
        apply_temperature(np.zeros((1, 2)), 0.0)


def test_ece_is_small_when_calibrated_and_scaling_fixes_overconfidence():
    rng = np.random.default_rng(1)
    p = rng.random(20_000)
    assert expected_calibration_error(p, rng.random(p.size) < p) < 0.02

    logits, y = _overconfident()
    before = expected_calibration_error(apply_temperature(logits, 1.0), y)
    after = expected_calibration_error(apply_temperature(logits, fit_temperature(logits, y)), y)
    assert before > 0.05
    assert after < 0.02 < before


def test_ece_matches_a_hand_count_with_edges_in_the_upper_bin():
    # bins [0, .5) and [.5, 1]: {.1, .3} -> |.5 - .2| = .3; {.5, 1} -> |.5 - .75| = .25
    p = np.array([0.1, 0.3, 0.5, 1.0])
    y = np.array([0, 1, 0, 1])
    assert expected_calibration_error(p, y, bins=2) == pytest.approx(0.275, abs=1e-12)


def test_ece_rejects_zero_bins():
    with pytest.raises(ValueError, match="bins must be >= 1, got 0"):
        expected_calibration_error(np.array([0.5]), np.array([1]), bins=0)


def test_reliability_diagram_writes_a_png(tmp_path):
    logits, y = _overconfident(2_000)
    path = reliability_diagram(
        apply_temperature(logits, 1.0),
        apply_temperature(logits, TRUE_TEMPERATURE),
        y,
        tmp_path / "plots" / "reliability.png",
    )
    assert path == tmp_path / "plots" / "reliability.png"
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
