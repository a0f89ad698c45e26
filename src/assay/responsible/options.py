"""The mitigation options a run compares: which rows the group thresholds fit on, which
groups are large enough to fit and to judge, 'none' plus one ThresholdOptimizer rule set per
constraint, and each option's test accuracy and disparities side by side."""

from __future__ import annotations

import numpy as np
import pandas as pd
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from sklearn.metrics import accuracy_score

from assay.config import Spec
from assay.modeling.rows import fits_on_validation
from assay.responsible.mitigation import THRESHOLD_CONSTRAINTS, fit_group_thresholds
from assay.serving.policy import DecisionPolicy, GroupThresholds


def mitigation_feature(spec: Spec) -> str:
    return spec.fairness.mitigate_on or spec.sensitive_features[0]


def tradeoff_row(
    option: str,
    policy: DecisionPolicy,
    decided: np.ndarray,
    y: np.ndarray,
    p_test: np.ndarray,
    test: pd.DataFrame,
    spec: Spec,
) -> dict:
    """The option's test accuracy (as drawn, and its expectation over the rules' random
    choices), its positive share and its disparities on every sensitive feature (over the
    groups the gate judges)."""
    rules = policy.thresholds
    positive = (
        rules.positive_probability(p_test, test[rules.feature], policy.threshold)
        if rules
        else decided
    )
    reweighed = spec.compression.reweigh_on
    row: dict = {
        "option": option,
        "training": f"reweighing by {reweighed}" if reweighed else "unweighted",
        "accuracy": float(accuracy_score(y, decided)),
        "expected_accuracy": float(np.mean(np.where(y == 1, positive, 1 - positive))),
        "positive_share": float(decided.mean()),
    }
    for feature in spec.sensitive_features:
        groups = test[feature].astype("string").fillna("missing")
        keep = judged_rows(groups, spec)
        if groups[keep].nunique() < 2:
            row[f"demographic_parity_difference ({feature})"] = float("nan")
            row[f"equalized_odds_difference ({feature})"] = float("nan")
            continue
        row[f"demographic_parity_difference ({feature})"] = float(
            demographic_parity_difference(y[keep], decided[keep], sensitive_features=groups[keep])
        )
        row[f"equalized_odds_difference ({feature})"] = float(
            equalized_odds_difference(y[keep], decided[keep], sensitive_features=groups[keep])
        )
    return row


def judged_rows(groups: pd.Series, spec: Spec) -> np.ndarray:
    """Rows whose group is large enough to judge (every row with `small_groups: include`)."""
    if spec.fairness.small_groups == "include":
        return np.ones(len(groups), dtype=bool)
    counts = groups.map(groups.value_counts())
    return (counts >= spec.fairness.min_group_size).to_numpy()


def mitigation_splits(spec: Spec) -> tuple[str, ...]:
    """The scored splits the mitigation's group thresholds fit on: the fitting rows ("train"),
    or under privacy with both held-out splits public, the validation and calibration rows.
    Per-group thresholds need many rows of each group and label: on Adult at epsilon 3 the
    2,605 validation rows left a test equalized-odds difference of 0.0545 on sex, the 9,119 of
    both splits 0.0158. The conformal quantile reads the calibrated scores alone, which the
    mitigation does not change, so its coverage stays what it was."""
    if spec.privacy is not None and spec.privacy.public_held_out:
        return ("valid", "calibration")
    return ("train",)


def mitigation_rows(spec: Spec) -> str:
    """What the notes call the rows the mitigation fits on."""
    if mitigation_splits(spec) != ("train",):
        return "public validation and calibration rows"
    return "validation rows" if fits_on_validation(spec) else "training rows"


def mitigation_options(
    p_fit: np.ndarray, y_fit: np.ndarray, fit: pd.DataFrame, spec: Spec, notes: list[str]
) -> dict[str, GroupThresholds | None]:
    """'none' plus one ThresholdOptimizer rule set per constraint, fit on the mitigation's rows
    (mitigation_splits) of the groups large enough to fit a threshold to (the others keep the
    plain threshold)."""
    if not spec.sensitive_features:
        return {"none": None}
    rows = mitigation_rows(spec)
    feature = mitigation_feature(spec)
    groups = fit[feature].astype("string").fillna("missing").reset_index(drop=True)
    keep = judged_rows(groups, spec)
    left_out = sorted(set(groups[~keep]))
    if left_out:
        notes.append(
            f"mitigation on {feature}: groups with fewer than {spec.fairness.min_group_size} "
            f"{rows} keep the plain threshold: {', '.join(left_out)}"
        )
    # a group whose rows are all one class has no ROC curve to pick a threshold on
    classes = pd.Series(y_fit).groupby(groups.to_numpy()).nunique()
    one_class = sorted(set(classes.index[classes < 2]) & set(groups[keep]))
    if one_class:
        keep &= ~groups.isin(one_class).to_numpy()
        notes.append(
            f"mitigation on {feature}: groups whose {rows} are all one class keep "
            f"the plain threshold: {', '.join(one_class)}"
        )
    if groups[keep].nunique() < 1 or len(np.unique(y_fit[keep])) < 2:
        notes.append(f"mitigation on {feature}: no group has enough rows to fit; none fitted")
        return {"none": None}
    fitted = {
        c: fit_group_thresholds(p_fit[keep], y_fit[keep], groups[keep], feature, c)
        for c in THRESHOLD_CONSTRAINTS
    }
    return {"none": None, **fitted}
