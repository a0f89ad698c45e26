"""The responsible stage: is the compressed candidate calibrated, fair, and explainable, and what
ships with it. Everything is measured on the int8 model that ships.

It runs as five steps so the flow can run the independent ones side by side:
- calibrate: a temperature fit on the validation split, ECE before and after on test; the
  calibrated scores of every split are saved for the steps below (the model scores each row once)
- conformal: split conformal on the calibration split (rows nothing else reads), one quantile
  for all rows or one per group (`uncertainty.group_by`); test coverage and rows sent to
  review, overall and per sensitive group
- fairness: the operating threshold chosen on validation rows by `decision.threshold`; every
  ThresholdOptimizer constraint fit on training-row scores (per-group thresholds need many rows
  per group: fit on the 3k validation rows, the equalized-odds gap on Adult's test rows came out
  three times larger; groups smaller than `fairness.min_group_size` are left out of the fit and
  get the plain threshold), each option's test accuracy and disparities side by side; the
  configured one ships, assessed per sensitive feature and intersection; the fairness gate and
  the degeneracy check of the shipped decisions
- explain: interventional SHAP on a seeded sample of test rows (background: training rows)
- package: the deployable folder below, from all of the above
conformal, fairness and explain need only calibrate's output, so they run side by side
(assay.pipeline.compose composes them, for the flow and the benchmarks alike).

The package folder is the deployable package (`assay predict --model` takes it):
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

from assay.config import Spec
from assay.data.labels import labels
from assay.data.split import Split
from assay.modeling.rows import fits_on_validation, fitting_rows
from assay.responsible.calibration import (
    expected_calibration_error,
    fit_temperature,
    reliability_diagram,
)
from assay.responsible.conformal import (
    coverage_by_group,
    empirical_coverage,
    fit_conformal,
    fit_group_conformal,
)
from assay.responsible.explain import (
    dependence_plot,
    example_explanations,
    global_importance,
    importance_plot,
    shapley_values,
)
from assay.responsible.fairness import assess
from assay.responsible.gate import decision_gate, fairness_gate
from assay.responsible.mitigation import THRESHOLD_CONSTRAINTS, fit_group_thresholds
from assay.responsible.plots import group_plot, tradeoff_plot
from assay.responsible.threshold import choose_threshold
from assay.serving.groups import INTERSECTION, cells, sensitive_columns
from assay.serving.layout import (
    MODEL_FILE,
    PROFILE_FILE,
    REPORT_FILE,
    SCORES_FILE,
    TOKENIZER_DIR,
    copy_model_files,
)
from assay.serving.policy import (
    DecisionPolicy,
    GroupQuantiles,
    GroupThresholds,
    apply_temperature,
    needs_review,
    prediction_sets,
)
from assay.serving.profile import build_profile
from assay.serving.scorer import OnnxScorer

SPLITS = ("train", "valid", "calibration", "test")  # the calibrated scores saved by calibrate
SHAP_FILE = "shap_values.npy"  # per explained test row, one column per feature


@dataclass(frozen=True)
class Calibration:
    """The temperature, its effect on test, and where the calibrated scores of each split lie."""

    folder: str
    temperature: float
    ece_before: float
    ece_after: float
    plot: str

    def scores(self, split: str) -> np.ndarray:
        return np.load(Path(self.folder) / f"p_{split}.npy", allow_pickle=False)

    def figures(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("temperature", "ece_before", "ece_after")}


@dataclass(frozen=True)
class FairnessOutcome:
    """The threshold, every mitigation option's trade-off, the one that ships, its
    assessment, the fairness gate and the degeneracy check (`decision_gate`)."""

    threshold: dict
    tradeoff: list[dict]
    mitigation: str
    rules: GroupThresholds | None
    fairness: dict
    gate: dict
    decision_gate: dict
    notes: list[str]
    plots: dict[str, str]


@dataclass(frozen=True)
class Explanations:
    """Mean |SHAP| per feature (largest first), the base value, example rows and the plots;
    the per-row values are saved beside them (SHAP_FILE, one column per feature)."""

    importance: dict[str, float]
    base: float
    examples: list[dict]
    plot: str
    dependence: str


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
    threshold: dict
    decision_gate: dict
    notes: list[str]

    @property
    def passed(self) -> bool:
        return bool(self.gate["passed"])

    def summary(self) -> str:
        """One line on what ships: decisions, fairness, calibration, review."""
        shipped = next(r for r in self.tradeoff if r["option"] == self.mitigation)
        gaps = "".join(
            f"{k.replace('_difference', '')} {v:.4f}, " for k, v in shipped.items() if "(" in k
        ).removesuffix(", ")
        gaps = f"{gaps}; " if gaps else ""
        t = self.threshold
        return (
            f"threshold {t['value']:.4f} ({t['rule']}), mitigation `{self.mitigation}`: "
            f"test accuracy {shipped['accuracy']:.4f}, "
            f"{100 * shipped['positive_share']:.1f}% positive; {gaps}"
            f"ECE {self.calibration['ece_before']:.4f} -> {self.calibration['ece_after']:.4f}; "
            f"conformal coverage {self.conformal['empirical_coverage']:.4f} "
            f"(target {self.conformal['target_coverage']:.2f}{self._lowest_group()}), "
            f"{100 * self.conformal['review_share']:.1f}% of rows to review"
        )

    def _lowest_group(self) -> str:
        """The least covered group that is not small, for the summary line."""
        judged = [
            (g["coverage"], feature, g["group"])
            for feature, groups in self.conformal["groups"].items()
            if INTERSECTION not in feature
            for g in groups
            if not g["small"]
        ]
        if not judged:
            return ""
        coverage, feature, group = min(judged)
        return f"; lowest group {feature} {group} {coverage:.4f}"


def mitigation_feature(spec: Spec) -> str:
    return spec.fairness.mitigate_on or spec.sensitive_features[0]


def _frames(split: Split, spec: Spec) -> dict[str, pd.DataFrame]:
    """The rows behind each saved score array, in the order they were scored. "train" is what
    the mitigation, the class prior and the drift profile fit on: the training rows, or under
    privacy with a public validation split the validation rows (assay.modeling.rows)."""
    return {
        "train": fitting_rows(split, spec).reset_index(drop=True),
        "valid": split.valid.reset_index(drop=True),
        "calibration": split.calibration.reset_index(drop=True),
        "test": split.test.reset_index(drop=True),
    }


def _scorer(compressed: Path) -> OnnxScorer:
    return OnnxScorer.load(compressed / MODEL_FILE, compressed / TOKENIZER_DIR)


def calibrate_stage(split: Split, spec: Spec, folder: Path, compressed: Path) -> Calibration:
    """One temperature on validation rows, judged on test rows; every split scored once."""
    folder.mkdir(parents=True, exist_ok=True)
    scorer, frames = _scorer(compressed), _frames(split, spec)
    logits = {name: scorer.logits(frame) for name, frame in frames.items()}
    temperature = fit_temperature(logits["valid"], labels(frames["valid"], spec))
    for name in SPLITS:
        p = apply_temperature(logits[name], temperature)
        np.save(folder / f"p_{name}.npy", p, allow_pickle=False)
    y_test = labels(frames["test"], spec)
    raw_test = apply_temperature(logits["test"], 1.0)
    p_test = apply_temperature(logits["test"], temperature)
    plot = reliability_diagram(raw_test, p_test, y_test, folder / "reliability.png")
    return Calibration(
        folder=str(folder),
        temperature=temperature,
        ece_before=expected_calibration_error(raw_test, y_test),
        ece_after=expected_calibration_error(p_test, y_test),
        plot=str(plot),
    )


def conformal_stage(split: Split, spec: Spec, folder: Path, calibration: Calibration) -> dict:
    """Split conformal fit on the calibration rows (one quantile, or one per group of
    `uncertainty.group_by`), coverage and review share measured on test rows, overall and per
    sensitive group and intersection."""
    settings, frames = spec.uncertainty, _frames(split, spec)
    coverage, held = settings.coverage, frames["calibration"]
    p_held, y_held = calibration.scores("calibration"), labels(held, spec)
    qhat = fit_conformal(p_held, y_held, coverage)
    notes = []
    if qhat == 1.0:
        notes.append(
            f"only {len(held)} calibration rows: no quantile reaches coverage {coverage:g}, so "
            "every set holds both labels and every row goes to review (raise "
            "split.calibration_fraction)"
        )
    quantiles = None
    if settings.group_by:
        fitted, left = fit_group_conformal(
            p_held, y_held, cells(held, settings.group_by), coverage, settings.min_group_rows
        )
        quantiles = GroupQuantiles(list(settings.group_by), fitted)
        if left:
            listed = ", ".join(f"{group} ({rows})" for group, rows in left.items())
            notes.append(
                f"conformal groups with fewer than {settings.min_group_rows} calibration rows "
                f"use the overall quantile: {listed}"
            )
    policy = DecisionPolicy(coverage=coverage, qhat=qhat, group_qhats=quantiles)
    test = frames["test"]
    sets = prediction_sets(calibration.scores("test"), policy.qhats(test[spec.group_columns]))
    y_test = labels(test, spec)
    groups = sensitive_columns(test, spec.sensitive_features)
    figures = {
        "target_coverage": coverage,
        "qhat": qhat,
        "group_by": list(settings.group_by),
        "group_qhats": asdict(quantiles) if quantiles else None,
        "calibration_rows": len(held),
        "empirical_coverage": empirical_coverage(sets, y_test),
        "review_share": float(needs_review(sets).mean()),
        "groups": coverage_by_group(sets, y_test, groups, spec.fairness.min_group_size),
        "notes": notes,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conformal.json").write_text(json.dumps(figures, indent=2))
    return figures


def _tradeoff_row(
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
        keep = _judged(groups, spec)
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


def _judged(groups: pd.Series, spec: Spec) -> np.ndarray:
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


def _mitigation_rows(spec: Spec) -> str:
    """What the notes call the rows the mitigation fits on."""
    if mitigation_splits(spec) != ("train",):
        return "public validation and calibration rows"
    return "validation rows" if fits_on_validation(spec) else "training rows"


def _options(
    p_fit: np.ndarray, y_fit: np.ndarray, fit: pd.DataFrame, spec: Spec, notes: list[str]
) -> dict[str, GroupThresholds | None]:
    """'none' plus one ThresholdOptimizer rule set per constraint, fit on the mitigation's rows
    (mitigation_splits) of the groups large enough to fit a threshold to (the others keep the
    plain threshold)."""
    if not spec.sensitive_features:
        return {"none": None}
    rows = _mitigation_rows(spec)
    feature = mitigation_feature(spec)
    groups = fit[feature].astype("string").fillna("missing").reset_index(drop=True)
    keep = _judged(groups, spec)
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


def fairness_stage(
    split: Split, spec: Spec, folder: Path, calibration: Calibration
) -> FairnessOutcome:
    """The threshold, every option's trade-off on test; the configured one ships, is
    assessed, gated and checked for degenerate decisions."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = _frames(split, spec)
    train, test = frames["train"], frames["test"]
    y_test, p_test = labels(test, spec), calibration.scores("test")
    y_train = labels(train, spec)
    threshold = choose_threshold(
        calibration.scores("valid"), labels(frames["valid"], spec), spec.decision, y_train.mean()
    )
    notes: list[str] = []
    fit_on = mitigation_splits(spec)
    fit = pd.concat([frames[name] for name in fit_on], ignore_index=True)
    p_fit = np.concatenate([calibration.scores(name) for name in fit_on])
    options = _options(p_fit, labels(fit, spec), fit, spec, notes)
    features = test[spec.group_columns]
    policies = {
        name: DecisionPolicy(thresholds=rules, threshold=threshold.value)
        for name, rules in options.items()
    }
    decided = {name: policy.decisions(p_test, features) for name, policy in policies.items()}
    tradeoff = [
        _tradeoff_row(name, policy, decided[name], y_test, p_test, test, spec)
        for name, policy in policies.items()
    ]
    shipped = spec.fairness.mitigation if spec.fairness.mitigation in options else "none"
    if shipped != spec.fairness.mitigation:
        notes.append(f"configured mitigation {spec.fairness.mitigation} not fitted: ships none")
    plots: dict[str, Path] = {}
    if spec.sensitive_features:
        plots["tradeoff"] = tradeoff_plot(
            tradeoff, mitigation_feature(spec), folder / "mitigation-tradeoff.png"
        )
    sensitive = sensitive_columns(test, spec.sensitive_features)
    report = assess(
        y_test,
        decided[shipped],
        p_test,
        sensitive,
        min_group_size=spec.fairness.min_group_size,
        resamples=spec.fairness.bootstrap,
        seed=spec.split.seed,
        exclude_small=spec.fairness.small_groups == "exclude",
    )
    notes += [
        f"{f.feature}: groups under {spec.fairness.min_group_size} test rows left out of the "
        f"disparities: {', '.join(f.excluded)}"
        for f in report.features
        if f.excluded
    ]
    for assessed in report.features:
        safe = assessed.feature.replace(" ", "")
        plots[f"groups-{safe}"] = group_plot(
            assessed.groups, assessed.feature, folder / f"groups-{safe}.png"
        )
    return FairnessOutcome(
        threshold=threshold.to_dict(),
        tradeoff=tradeoff,
        mitigation=shipped,
        rules=options[shipped],
        fairness=report.to_dict(),
        gate=fairness_gate(spec.fairness.gate, report).to_dict(),
        decision_gate=decision_gate(decided[shipped], sensitive, spec.decision).to_dict(),
        notes=notes,
        plots={name: str(path) for name, path in plots.items()},
    )


def explain_stage(
    split: Split, spec: Spec, folder: Path, compressed: Path, calibration: Calibration
) -> Explanations:
    """Interventional SHAP of the shipped (calibrated) model on a seeded sample of test rows,
    absent features drawn from a seeded sample of the rows the model was fitted on (under
    privacy with public validation rows, those: the report then reveals no private row)."""
    folder.mkdir(parents=True, exist_ok=True)
    settings, seed = spec.explanations, spec.split.seed
    sample, background = explanation_rows(split, spec)
    scorer = _scorer(compressed)

    def calibrated(frame: pd.DataFrame) -> np.ndarray:
        return apply_temperature(scorer.logits(frame), calibration.temperature)

    shapley = shapley_values(
        calibrated,
        sample,
        background,
        spec.feature_columns,
        permutations=settings.permutations,
        seed=seed,
    )
    np.save(folder / SHAP_FILE, shapley.values.to_numpy(), allow_pickle=False)
    importance = global_importance(shapley.values)
    top = list(importance.index[: settings.top])
    examples = example_explanations(
        sample, shapley.values, shapley.predictions, rows=settings.examples
    )
    return Explanations(
        importance={k: float(v) for k, v in importance.items()},
        base=shapley.base,
        examples=examples,
        plot=str(importance_plot(importance, folder / "importance.png")),
        dependence=str(dependence_plot(sample, shapley.values, top, folder / "dependence.png")),
    )


def explanation_rows(split: Split, spec: Spec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(test rows explained, background rows): seeded samples of `explanations.rows` test
    rows and `explanations.background` of the rows the model was fitted on."""
    settings, seed = spec.explanations, spec.split.seed

    def sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
        return frame.sample(min(rows, len(frame)), random_state=seed).reset_index(drop=True)

    return sample(split.test, settings.rows), sample(fitting_rows(split, spec), settings.background)


def _into(folder: Path, path: str) -> str:
    """A copy of the file in the package folder (the path itself when it already is there)."""
    target = folder / Path(path).name
    if Path(path).resolve() != target.resolve():
        shutil.copy2(path, target)
    return str(target)


def package_stage(
    split: Split,
    spec: Spec,
    folder: Path,
    compressed: Path,
    calibration: Calibration,
    conformal: dict,
    fairness: FairnessOutcome,
    explanations: Explanations,
) -> ResponsibleOutcome:
    """The deployable package: the compressed model's files, the decision policy, the plots,
    the drift reference and every figure."""
    copy_model_files(compressed, folder)
    DecisionPolicy(
        calibration.temperature,
        fairness.rules,
        conformal["target_coverage"],
        conformal["qhat"],
        fairness.threshold["value"],
        fairness.threshold["rule"],
        GroupQuantiles(**conformal["group_qhats"]) if conformal["group_qhats"] else None,
    ).save(folder)
    scores = folder / SCORES_FILE
    np.save(scores, calibration.scores("test"), allow_pickle=False)
    # What drift is measured against in production: the training rows and the shipped scores
    train = _frames(split, spec)["train"]
    build_profile(train, spec, calibration.scores("train")).save(folder / PROFILE_FILE)
    plots = {
        "reliability": calibration.plot,
        **fairness.plots,
        "importance": explanations.plot,
        "dependence": explanations.dependence,
    }
    outcome = ResponsibleOutcome(
        folder=str(folder),
        test_scores=str(scores),
        calibration=calibration.figures(),
        conformal=conformal,
        tradeoff=fairness.tradeoff,
        mitigation=fairness.mitigation,
        fairness=fairness.fairness,
        gate=fairness.gate,
        importance=explanations.importance,
        examples=explanations.examples,
        plots={name: _into(folder, path) for name, path in plots.items()},
        threshold=fairness.threshold,
        decision_gate=fairness.decision_gate,
        notes=[*conformal["notes"], *fairness.notes],
    )
    (folder / REPORT_FILE).write_text(json.dumps(asdict(outcome), indent=2))
    return outcome
