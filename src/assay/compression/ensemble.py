"""What the student learns from: the best model there is, which is seldom the teacher alone.

The fine-tuned teacher and the reference family's members each give a log-odds per row; the
ensemble is a weighted sum of them, scaled and shifted, `a * sum_k w_k z_k + b`, with weights on
a simplex grid and (a, b) fit by logistic regression, the combination chosen by log loss on
the validation rows. A member the validation rows find useless gets weight 0, so the ensemble
is never worse there than its best member. Its test figures are reported as a row of the run's
table; the student distils from its log-odds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

GRID_STEP = 0.1  # weight resolution: 11 values for two members, 66 for three
_EPS = 1e-6


def log_odds(p: np.ndarray) -> np.ndarray:
    """Probabilities as log-odds, clipped away from 0 and 1 so a sure member stays finite."""
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Ensemble:
    """Fitted weights over named members and the scale and shift of their weighted log-odds."""

    weights: dict[str, float]
    scale: float
    bias: float
    valid_log_loss: float

    def log_odds(self, members: Mapping[str, np.ndarray]) -> np.ndarray:
        """The ensemble's log-odds from each member's log-odds on the same rows."""
        mixed = sum(w * np.asarray(members[name]) for name, w in self.weights.items() if w)
        return self.scale * mixed + self.bias

    def predict_proba(self, members: Mapping[str, np.ndarray]) -> np.ndarray:
        return expit(self.log_odds(members))

    def to_dict(self) -> dict:
        return {
            "weights": self.weights,
            "scale": self.scale,
            "bias": self.bias,
            "valid_log_loss": self.valid_log_loss,
        }


def simplex(members: int, step: float = GRID_STEP) -> list[tuple[float, ...]]:
    """Every weight vector on the grid whose entries sum to one."""
    ticks = round(1 / step)
    return [
        tuple(k / ticks for k in combo)
        for combo in itertools.product(range(ticks + 1), repeat=members)
        if sum(combo) == ticks
    ]


def fit_ensemble(valid: Mapping[str, np.ndarray], y_valid: np.ndarray) -> Ensemble:
    """Choose the weights, scale and shift with the least log loss on the validation rows
    (`valid`: each member's log-odds on them). Ties go to the earlier grid point, so the
    choice is deterministic."""
    names = list(valid)
    stacked = np.stack([np.asarray(valid[n], dtype=np.float64) for n in names], axis=1)
    best: Ensemble | None = None
    for weights in simplex(len(names)):
        mixed = (stacked @ np.asarray(weights))[:, None]
        fit = LogisticRegression(C=1e6, max_iter=1000).fit(mixed, y_valid)
        loss = float(log_loss(y_valid, fit.predict_proba(mixed)[:, 1], labels=[0, 1]))
        if best is None or loss < best.valid_log_loss - 1e-12:
            best = Ensemble(
                dict(zip(names, weights, strict=True)),
                float(fit.coef_[0, 0]),
                float(fit.intercept_[0]),
                loss,
            )
    assert best is not None
    return best


Scorer = Callable[[pd.DataFrame], np.ndarray]  # a member's log-odds for the rows of a frame


@dataclass(frozen=True)
class EnsembleTeacher:
    """The fitted ensemble with its members, scoring frames: the student's teacher."""

    ensemble: Ensemble
    members: dict[str, Scorer]

    @classmethod
    def alone(cls, name: str, member: Scorer) -> EnsembleTeacher:
        """One member as it is: weight 1, no scale or shift fit on any rows."""
        return cls(Ensemble({name: 1.0}, 1.0, 0.0, float("nan")), {name: member})

    @classmethod
    def fit(
        cls, members: dict[str, Scorer], valid: pd.DataFrame, y_valid: np.ndarray
    ) -> EnsembleTeacher:
        scores = {name: score(valid) for name, score in members.items()}
        return cls(fit_ensemble(scores, y_valid), members)

    def log_odds(self, frame: pd.DataFrame) -> np.ndarray:
        used = {n: s(frame) for n, s in self.members.items() if self.ensemble.weights[n]}
        return self.ensemble.log_odds(used)

    def logits(self, frame: pd.DataFrame) -> np.ndarray:
        """Two-class logits [rows, 2] whose softmax is the ensemble's probability."""
        z = self.log_odds(frame)
        return np.stack([-z / 2, z / 2], axis=1).astype(np.float32)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return expit(self.log_odds(frame))
