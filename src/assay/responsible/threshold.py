"""The operating threshold: fit on the validation rows' calibrated scores by the spec's rule,
never fixed at 0.5. With 12% positives and a model that is rarely sure, every score can lie
below 0.5, and a 0.5 threshold then decides "negative" for everyone: an all-negative model
whose fairness disparities are all zero. `max_f1` (the default) cannot do that: deciding no
one positive has F1 0.

Every rule looks at the same candidates: "positive when the score is at least t" for each
distinct validation score t, and "no one positive"."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from assay.config import DecisionSpec


@dataclass(frozen=True)
class Threshold:
    """The chosen threshold, the rule that chose it and what it gives on the fitting rows."""

    rule: str
    value: float
    valid_accuracy: float
    valid_f1: float
    valid_positive_share: float

    def to_dict(self) -> dict:
        return asdict(self)


def _counts(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, true positives, false positives) for every candidate, most strict first;
    the first candidate decides no one positive."""
    order = np.argsort(-p, kind="stable")
    scores, truth = p[order], y[order]
    last_of_tie = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tp = np.r_[0, np.cumsum(truth)[last_of_tie]]
    fp = np.r_[0, np.cumsum(1 - truth)[last_of_tie]]
    thresholds = np.r_[np.nextafter(scores[0], np.inf), scores[last_of_tie]]
    return thresholds, tp.astype(np.float64), fp.astype(np.float64)


def choose_threshold(
    p: np.ndarray, y: np.ndarray, decision: DecisionSpec, prevalence: float
) -> Threshold:
    """The threshold `decision.threshold` asks for, from calibrated scores `p` and 0/1 labels
    `y`; `prevalence` is the positive share of the training rows ('match_prevalence')."""
    thresholds, tp, fp = _counts(p, y)
    positives, n = float(y.sum()), float(len(y))
    fn, tn = positives - tp, (n - positives) - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * tp / (2 * tp + fp + fn))
    rule = decision.threshold
    if isinstance(rule, float):
        value = rule
    elif rule == "max_f1":
        value = float(thresholds[np.argmax(f1)])
    elif rule == "max_accuracy":
        value = float(thresholds[np.argmax(tp + tn)])
    elif rule == "cost":
        costs = decision.costs
        value = float(thresholds[np.argmin(costs.false_positive * fp + costs.false_negative * fn)])
    else:  # match_prevalence: the top `prevalence` share of rows decided positive
        value = float(np.quantile(p, 1 - prevalence, method="higher"))
    decided = p >= value
    hits = float((decided & (y == 1)).sum())
    return Threshold(
        rule=str(rule) if not isinstance(rule, float) else "fixed",
        value=value,
        valid_accuracy=float(np.mean(decided == (y == 1))),
        valid_f1=2 * hits / (decided.sum() + positives) if decided.sum() + positives else 0.0,
        valid_positive_share=float(decided.mean()),
    )
