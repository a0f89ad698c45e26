"""How a deployed model turns its logits into what the predictor outputs: a calibrated
probability (temperature scaling), a decision (one threshold chosen on validation rows, or the
per-group rules of a fairness mitigation) and a flag for human review (split conformal
prediction). Everything here is applied with numpy and pandas only, so the torch-free predictor
needs neither Fairlearn, scikit-learn nor scipy; the fitting halves live in assay.responsible.

A rule for a group is Fairlearn's interpolation: with probability p0 apply threshold operation 0,
otherwise operation 1 (and, where present, with probability p_ignore predict a constant). The
random draw is a hash of the row's cells, so the same row always gets the same decision."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from assay.serving.groups import cells
from assay.serving.layout import POLICY_FILE

DEFAULT_THRESHOLD = 0.5  # in packages written before the threshold was chosen


def log_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise log-softmax of logits / T; subtracting the row max keeps exp from overflowing."""
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"logits must have shape [n, 2], got {logits.shape}")
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Positive-class probabilities of softmax(logits / T) (temperature scaling)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return np.exp(log_softmax(logits, temperature)[:, 1])


def class_scores(p: np.ndarray) -> np.ndarray:
    """Conformal nonconformity 1 - P(k) of each class k, shape [n, 2]: P(1) = p and
    P(0) = 1 - p, so the class-0 score is p itself (written so, it carries no rounding from
    1 - (1 - p))."""
    p = np.asarray(p, dtype=float)
    return np.column_stack([p, 1.0 - p])


def prediction_sets(p: np.ndarray, qhat: float | np.ndarray) -> np.ndarray:
    """Bool [n, 2]: class k is in row i's conformal set when 1 - P(k) <= qhat (one number,
    or one per row under group-conditional quantiles)."""
    return class_scores(p) <= np.reshape(qhat, (-1, 1))


def needs_review(sets: np.ndarray) -> np.ndarray:
    """True where the set is empty or holds both classes: the model cannot name one label at the
    promised coverage, so a person should."""
    return sets.sum(axis=1) != 1


@dataclass(frozen=True)
class Operation:
    operator: str  # ">" or "<"
    threshold: float

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return scores > self.threshold if self.operator == ">" else scores < self.threshold


@dataclass(frozen=True)
class GroupRule:
    p0: float
    operation0: Operation
    operation1: Operation
    p_ignore: float = 0.0
    constant: float = 0.0

    def positive_probability(self, scores: np.ndarray) -> np.ndarray:
        mixed = self.p0 * self.operation0(scores) + (1 - self.p0) * self.operation1(scores)
        return self.p_ignore * self.constant + (1 - self.p_ignore) * mixed


@dataclass(frozen=True)
class GroupThresholds:
    """Per-group rules over one sensitive feature (the feature must be an input column)."""

    feature: str
    constraint: str
    rules: dict[str, GroupRule]

    def positive_probability(
        self, scores: np.ndarray, groups: pd.Series, fallback: float = DEFAULT_THRESHOLD
    ) -> np.ndarray:
        """Probability of predicting positive per row; a group without a rule of its own
        (unseen, or too small to fit one) gets the plain `fallback` threshold."""
        keys = groups.astype("string").fillna("missing").to_numpy()
        out = (scores >= fallback).astype(np.float64)
        for group, rule in self.rules.items():
            rows = keys == group
            out[rows] = rule.positive_probability(scores[rows])
        return out

    def decide(
        self, scores: np.ndarray, features: pd.DataFrame, fallback: float = DEFAULT_THRESHOLD
    ) -> np.ndarray:
        """0/1 decisions for rows given by their feature columns only (the row's random draw
        hashes them: an id or label column beside them must not change a decision)."""
        probability = self.positive_probability(scores, features[self.feature], fallback)
        return (row_draws(features) < probability).astype(np.int64)

    @classmethod
    def from_dict(cls, raw: dict) -> GroupThresholds:
        """Back from the JSON that DecisionPolicy.save wrote (dataclasses.asdict)."""
        rules = {
            group: GroupRule(
                p0=rule["p0"],
                operation0=Operation(**rule["operation0"]),
                operation1=Operation(**rule["operation1"]),
                p_ignore=rule["p_ignore"],
                constant=rule["constant"],
            )
            for group, rule in raw["rules"].items()
        }
        return cls(raw["feature"], raw["constraint"], rules)


@dataclass(frozen=True)
class GroupQuantiles:
    """Group-conditional (Mondrian) conformal: a quantile per group of the intersection of
    `features`, fit on that group's calibration rows; a group without one (too few calibration
    rows, or unseen) uses the overall quantile."""

    features: list[str]
    qhats: dict[str, float]

    def per_row(self, features: pd.DataFrame, overall: float) -> np.ndarray:
        keys = cells(features, self.features)
        return keys.map(self.qhats).astype("Float64").fillna(overall).to_numpy(np.float64)


def row_draws(frame: pd.DataFrame) -> np.ndarray:
    """A uniform [0, 1) number per row, fixed by the row's cells (not by its position or by
    what else is in the batch): a stable seed for the randomized group rules."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    return (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass(frozen=True)
class DecisionPolicy:
    """What ships beside the model: fitted on held-out rows, applied to every scored row."""

    temperature: float = 1.0
    thresholds: GroupThresholds | None = None
    coverage: float | None = None  # conformal target; None: no review flag
    qhat: float | None = None
    threshold: float = DEFAULT_THRESHOLD  # positive at or above it, without a group rule
    threshold_rule: str = "fixed"  # how `threshold` was chosen (spec `decision.threshold`)
    group_qhats: GroupQuantiles | None = None  # Mondrian conformal; None: `qhat` for every row

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return apply_temperature(logits, self.temperature)

    def decisions(self, probability: np.ndarray, features: pd.DataFrame) -> np.ndarray:
        """0/1 per row; `features` holds the model's feature columns and nothing else."""
        if self.thresholds is None:
            return (probability >= self.threshold).astype(np.int64)
        return self.thresholds.decide(probability, features, self.threshold)

    def qhats(self, features: pd.DataFrame) -> float | np.ndarray:
        """The conformal quantile each row's set is cut at (its group's, under Mondrian)."""
        if self.qhat is None:
            raise ValueError("this policy has no conformal quantile")
        if self.group_qhats is None:
            return self.qhat
        return self.group_qhats.per_row(features, self.qhat)

    def review(self, probability: np.ndarray, features: pd.DataFrame) -> np.ndarray | None:
        """True where the conformal prediction set is not a single class; `features` holds
        the group columns (read under group-conditional quantiles)."""
        if self.qhat is None:
            return None
        return needs_review(prediction_sets(probability, self.qhats(features)))

    def save(self, folder: Path) -> Path:
        raw = asdict(self)
        path = folder / POLICY_FILE
        path.write_text(json.dumps(raw, indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: Path) -> DecisionPolicy:
        """The folder's policy, or the plain one (T=1, threshold 0.5, no review) without it;
        a policy written before thresholds were chosen keeps 0.5."""
        path = folder / POLICY_FILE
        if not path.is_file():
            return cls()
        raw = json.loads(path.read_text(encoding="utf-8"))
        thresholds, quantiles = raw["thresholds"], raw.get("group_qhats")
        return cls(
            temperature=raw["temperature"],
            thresholds=GroupThresholds.from_dict(thresholds) if thresholds else None,
            coverage=raw["coverage"],
            qhat=raw["qhat"],
            threshold=raw.get("threshold", DEFAULT_THRESHOLD),
            threshold_rule=raw.get("threshold_rule", "fixed"),
            group_qhats=GroupQuantiles(**quantiles) if quantiles else None,
        )
