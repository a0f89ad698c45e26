"""Temperature scaling (Guo et al. 2017) for a binary classifier's two-class logits, and the
expected calibration error that says whether it helped. Applying a fitted temperature is
assay.serving.policy's (numpy only); scipy and matplotlib load lazily in the functions that fit
and draw."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assay.serving.policy import log_softmax

TEMPERATURE_BOUNDS = (0.05, 20.0)  # wide enough for any sane model; the search is over log T
DEFAULT_BINS = 15  # Guo et al.'s choice, so ECE values compare with the literature


def _nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the labels under softmax(logits / T)."""
    log_p = log_softmax(logits, temperature)
    return float(-log_p[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The T > 0 that minimizes held-out NLL of softmax(logits / T). Searching over log T makes
    the problem well scaled (T = 0.5 and T = 2 are equally far from 1); the bounded search is
    deterministic."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(y, dtype=np.int64)
    low, high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(
        lambda log_t: _nll(logits, labels, float(np.exp(log_t))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(result.x))


def _bin_stats(
    p: np.ndarray, y: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean p and mean y of each non-empty equal-width bin over [0, 1]. Bins are closed
    on the left, [k/bins, (k+1)/bins), except the last, which also holds p = 1."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.digitize(p, edges[1:-1])
    counts = np.bincount(index, minlength=bins)
    sum_p = np.bincount(index, weights=p, minlength=bins)
    sum_y = np.bincount(index, weights=y, minlength=bins)
    filled = counts > 0
    return counts[filled], sum_p[filled] / counts[filled], sum_y[filled] / counts[filled]


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """ECE on the positive-class probability: sum over bins b of (n_b / n) * |mean(y_b) -
    mean(p_b)|, with `bins` equal-width bins over p in [0, 1] (see `_bin_stats` for edges).
    Binning p rather than max(p, 1 - p) (Guo et al.'s confidence) keeps both tails visible, which
    is what the reliability diagram shows too."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    counts, mean_p, mean_y = _bin_stats(np.asarray(p, float), np.asarray(y, float), bins)
    return float((counts * np.abs(mean_y - mean_p)).sum() / counts.sum())


def reliability_diagram(
    p_before: np.ndarray,
    p_after: np.ndarray,
    y: np.ndarray,
    path: Path,
    bins: int = DEFAULT_BINS,
) -> Path:
    """Observed frequency against mean predicted probability per bin, before and after scaling,
    as a PNG a reviewer can read without running anything."""
    from assay.responsible.plots import new_axes

    figure, axes = new_axes(5, 5)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for name, p in (("before", p_before), ("after", p_after)):
        _, mean_p, mean_y = _bin_stats(np.asarray(p, float), np.asarray(y, float), bins)
        ece = expected_calibration_error(p, y, bins)
        axes.plot(mean_p, mean_y, marker="o", label=f"{name} scaling (ECE {ece:.3f})")
    axes.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="mean predicted probability",
        ylabel="observed frequency of the positive class",
        title="Reliability diagram",
    )
    axes.legend(loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
