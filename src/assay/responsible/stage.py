"""The responsible stage: is the compressed candidate calibrated, fair, and explainable, and what
ships with it. Everything is measured on the int8 model that ships.

- calibration: a temperature fit on the validation split; ECE before and after on test
- uncertainty: split conformal on the validation split; test coverage and rows sent to review
- mitigation: every ThresholdOptimizer constraint fit on training-row scores (per-group
  thresholds need many rows per group: fit on the 3k validation rows, the equalized-odds gap on
  Adult's test rows came out three times larger), each option's test accuracy and disparities
  side by side; the configured one ships
- fairness: the shipped decisions assessed per sensitive feature and intersection; the gate
- explanations: occlusion on a seeded sample of test rows

The stage folder is the deployable package (`assay predict --model` takes it):
  model.int8.onnx, tokenizer/, spec.json (copied from the compression stage), decision.json (the
  policy the predictor applies), responsible.json (every figure), reference-profile.json (the
  training rows and their scores: what drift monitoring compares new rows with) and the PNG plots.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from sklearn.metrics import accuracy_score

from assay.compression.predictor import MODEL_FILE, SPEC_FILE, TOKENIZER_DIR
from assay.compression.scorer import OnnxScorer
from assay.config import Spec
from assay.data.labels import labels
from assay.data.split import Split
from assay.modeling.teacher import training_rows
from assay.monitoring.profile import PROFILE_FILE, build_profile
from assay.responsible.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability_diagram,
)
from assay.responsible.conformal import (
    empirical_coverage,
    fit_conformal,
    needs_review,
    prediction_sets,
)
from assay.responsible.decision import DecisionPolicy, GroupThresholds
from assay.responsible.explain import (
    example_explanations,
    global_importance,
    importance_plot,
    occlusion,
)
from assay.responsible.fairness import assess, sensitive_columns
from assay.responsible.gate import fairness_gate
from assay.responsible.mitigation import THRESHOLD_CONSTRAINTS, fit_group_thresholds
from assay.responsible.plots import group_plot, tradeoff_plot

REPORT_FILE = "responsible.json"
SCORES_FILE = "test_scores.npy"  # calibrated P(positive) of the shipped model on the test split


@dataclass(frozen=True)
class ResponsibleOutcome:
    folder: str
    test_scores: str
    calibration: dict
    conformal: dict
    tradeoff: list[dict]
    mitigation: str
    fairness: dict
    gate: dict
    importance: dict[str, float]
    examples: list[dict]
    plots: dict[str, str]

    @property
    def passed(self) -> bool:
        return bool(self.gate["passed"])

    def summary(self) -> str:
        """One line on what ships: decisions, fairness, calibration, review."""
        shipped = next(r for r in self.tradeoff if r["option"] == self.mitigation)
        gaps = ", ".join(
            f"{k.replace('_difference', '')} {v:.4f}" for k, v in shipped.items() if "(" in k
        )
        return (
            f"mitigation `{self.mitigation}`: test accuracy {shipped['accuracy']:.4f}; {gaps}; "
            f"ECE {self.calibration['ece_before']:.4f} -> {self.calibration['ece_after']:.4f}; "
            f"conformal coverage {self.conformal['empirical_coverage']:.4f} "
            f"(target {self.conformal['target_coverage']:.2f}), "
            f"{100 * self.conformal['review_share']:.1f}% of rows to review"
        )


def mitigation_feature(spec: Spec) -> str:
    return spec.fairness.mitigate_on or spec.sensitive_features[0]


def _tradeoff_row(
    option: str,
    rules: GroupThresholds | None,
    decided: np.ndarray,
    y: np.ndarray,
    p_test: np.ndarray,
    test: pd.DataFrame,
    spec: Spec,
) -> dict:
    """The option's test accuracy (as drawn, and its expectation over the rules' random
    choices) and its disparities on every sensitive feature."""
    positive = rules.positive_probability(p_test, test[rules.feature]) if rules else decided
    reweighed = spec.compression.reweigh_on
    row: dict = {
        "option": option,
        "training": f"reweighing by {reweighed}" if reweighed else "unweighted",
        "accuracy": float(accuracy_score(y, decided)),
        "expected_accuracy": float(np.mean(np.where(y == 1, positive, 1 - positive))),
    }
    for feature in spec.sensitive_features:
        groups = test[feature].astype("string").fillna("missing")
        row[f"demographic_parity_difference ({feature})"] = float(
            demographic_parity_difference(y, decided, sensitive_features=groups)
        )
        row[f"equalized_odds_difference ({feature})"] = float(
            equalized_odds_difference(y, decided, sensitive_features=groups)
        )
    return row


def _options(
    p_train: np.ndarray, y_train: np.ndarray, train: pd.DataFrame, spec: Spec
) -> dict[str, GroupThresholds | None]:
    """'none' plus one ThresholdOptimizer rule set per constraint, fit on training rows."""
    if not spec.sensitive_features:
        return {"none": None}
    feature = mitigation_feature(spec)
    fitted = {
        c: fit_group_thresholds(p_train, y_train, train[feature], feature, c)
        for c in THRESHOLD_CONSTRAINTS
    }
    return {"none": None, **fitted}


def _package(compressed: Path, folder: Path, policy: DecisionPolicy) -> None:
    """The deployable package: the compressed model's files plus the policy."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(compressed / MODEL_FILE, folder / MODEL_FILE)
    shutil.copy2(compressed / SPEC_FILE, folder / SPEC_FILE)
    shutil.copytree(compressed / TOKENIZER_DIR, folder / TOKENIZER_DIR, dirs_exist_ok=True)
    policy.save(folder)


def responsible_stage(
    split: Split, spec: Spec, compressed: Path, folder: Path
) -> ResponsibleOutcome:
    """Calibrate, set up review, compare mitigations, assess and gate, explain, package."""
    folder.mkdir(parents=True, exist_ok=True)
    scorer = OnnxScorer.load(compressed / MODEL_FILE, compressed / TOKENIZER_DIR)
    valid, test = split.valid.reset_index(drop=True), split.test.reset_index(drop=True)
    y_valid, y_test = labels(valid, spec), labels(test, spec)
    logits_valid, logits_test = scorer.logits(valid), scorer.logits(test)

    # Calibration: one temperature on validation rows, judged on test rows
    temperature = fit_temperature(logits_valid, y_valid)
    p_valid = apply_temperature(logits_valid, temperature)
    raw_test = apply_temperature(logits_test, 1.0)
    p_test = apply_temperature(logits_test, temperature)
    calibration = {
        "temperature": temperature,
        "ece_before": expected_calibration_error(raw_test, y_test),
        "ece_after": expected_calibration_error(p_test, y_test),
    }
    plots = {
        "reliability": reliability_diagram(raw_test, p_test, y_test, folder / "reliability.png")
    }

    # Uncertainty: split conformal on validation rows, coverage measured on test rows
    coverage = spec.uncertainty.coverage
    qhat = fit_conformal(p_valid, y_valid, coverage)
    sets = prediction_sets(p_test, qhat)
    conformal = {
        "target_coverage": coverage,
        "qhat": qhat,
        "empirical_coverage": empirical_coverage(sets, y_test),
        "review_share": float(needs_review(sets).mean()),
    }

    # Mitigation: every option's trade-off on test; the configured one ships
    train = training_rows(split, spec).reset_index(drop=True)
    p_train = apply_temperature(scorer.logits(train), temperature)
    options = _options(p_train, labels(train, spec), train, spec)
    features = test[spec.feature_columns]
    decided = {
        name: DecisionPolicy(thresholds=rules).decisions(p_test, features)
        for name, rules in options.items()
    }
    tradeoff = [
        _tradeoff_row(name, rules, decided[name], y_test, p_test, test, spec)
        for name, rules in options.items()
    ]
    shipped = spec.fairness.mitigation if spec.fairness.mitigation in options else "none"
    if spec.sensitive_features:
        plots["tradeoff"] = tradeoff_plot(
            tradeoff, mitigation_feature(spec), folder / "mitigation-tradeoff.png"
        )

    # Fairness of what ships, and the gate
    sensitive = sensitive_columns(test, spec.sensitive_features)
    report = assess(
        y_test,
        decided[shipped],
        p_test,
        sensitive,
        min_group_size=spec.fairness.min_group_size,
        resamples=spec.fairness.bootstrap,
        seed=spec.split.seed,
    )
    gate = fairness_gate(spec.fairness.gate, report)
    for assessed in report.features:
        safe = assessed.feature.replace(" ", "")
        plots[f"groups-{safe}"] = group_plot(
            assessed.groups, assessed.feature, folder / f"groups-{safe}.png"
        )

    # Explanations of the shipped model on a seeded sample of test rows
    sample = test.sample(
        min(spec.explanations.rows, len(test)), random_state=spec.split.seed
    ).reset_index(drop=True)

    def calibrated(frame: pd.DataFrame) -> np.ndarray:
        return apply_temperature(scorer.logits(frame), temperature)

    attributions = occlusion(calibrated, sample, spec.feature_columns)
    importance = global_importance(attributions)
    examples = example_explanations(
        sample, attributions, calibrated(sample), rows=spec.explanations.examples
    )
    plots["importance"] = importance_plot(importance, folder / "importance.png")

    # Package what ships; keep every figure beside it
    policy = DecisionPolicy(temperature, options[shipped], coverage, qhat)
    _package(compressed, folder, policy)
    scores = folder / SCORES_FILE
    np.save(scores, p_test, allow_pickle=False)
    # What drift is measured against in production: the training rows and the shipped scores
    build_profile(train, spec, p_train).save(folder / PROFILE_FILE)
    outcome = ResponsibleOutcome(
        folder=str(folder),
        test_scores=str(scores),
        calibration=calibration,
        conformal=conformal,
        tradeoff=tradeoff,
        mitigation=shipped,
        fairness=report.to_dict(),
        gate=gate.to_dict(),
        importance={k: float(v) for k, v in importance.items()},
        examples=examples,
        plots={name: str(path) for name, path in plots.items()},
    )
    (folder / REPORT_FILE).write_text(json.dumps(asdict(outcome), indent=2))
    return outcome
