"""Decisions and fairness: the operating threshold chosen on validation rows by
`decision.threshold`; every ThresholdOptimizer constraint fit on training-row scores (per-group
thresholds need many rows per group: fit on the 3k validation rows, the equalized-odds gap on
Adult's test rows came out three times larger; groups smaller than `fairness.min_group_size`
are left out of the fit and get the plain threshold); each option's test accuracy and
disparities side by side; the configured one ships, assessed per sensitive feature and
intersection, with the fairness gate and the degeneracy check of the shipped decisions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from assay.config import Spec
from assay.data.labels import labels
from assay.data.split import Split
from assay.responsible.fairness import FairnessReport, assess
from assay.responsible.gate import decision_gate, fairness_gate
from assay.responsible.options import (
    mitigation_feature,
    mitigation_options,
    mitigation_splits,
    tradeoff_row,
)
from assay.responsible.plots import group_plot, tradeoff_plot
from assay.responsible.threshold import choose_threshold
from assay.serving.groups import sensitive_columns
from assay.serving.policy import DecisionPolicy, GroupThresholds
from assay.stages import calibrate
from assay.stages.calibrate import Calibration, scored_frames
from assay.stages.compress import STUDENT_SECTIONS
from assay.stages.stage import Stage

NAME = "fairness"


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


def fairness_stage(
    split: Split, spec: Spec, folder: Path, calibration: Calibration
) -> FairnessOutcome:
    """The threshold, every option's trade-off on test; the configured one ships, is
    assessed, gated and checked for degenerate decisions."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = scored_frames(split, spec)
    train, test = frames["train"], frames["test"]
    y_test, p_test = labels(test, spec), calibration.scores("test")
    y_train = labels(train, spec)
    threshold = choose_threshold(
        calibration.scores("valid"), labels(frames["valid"], spec), spec.decision, y_train.mean()
    )
    notes: list[str] = []
    options = _fit_options(frames, calibration, spec, notes)
    features = test[spec.group_columns]
    policies = {
        name: DecisionPolicy(thresholds=rules, threshold=threshold.value)
        for name, rules in options.items()
    }
    decided = {name: policy.decisions(p_test, features) for name, policy in policies.items()}
    tradeoff = [
        tradeoff_row(name, policy, decided[name], y_test, p_test, test, spec)
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
    notes += excluded_groups(report, spec)
    plots |= _group_plots(report, folder)
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


def _fit_options(
    frames: dict[str, pd.DataFrame], calibration: Calibration, spec: Spec, notes: list[str]
) -> dict[str, GroupThresholds | None]:
    """Every mitigation option, fit on the mitigation's rows (mitigation_splits) and their
    calibrated scores."""
    fit_on = mitigation_splits(spec)
    fit = pd.concat([frames[name] for name in fit_on], ignore_index=True)
    p_fit = np.concatenate([calibration.scores(name) for name in fit_on])
    return mitigation_options(p_fit, labels(fit, spec), fit, spec, notes)


def excluded_groups(report: FairnessReport, spec: Spec) -> list[str]:
    """A note per sensitive feature whose small groups the disparities leave out."""
    return [
        f"{f.feature}: groups under {spec.fairness.min_group_size} test rows left out of the "
        f"disparities: {', '.join(f.excluded)}"
        for f in report.features
        if f.excluded
    ]


def _group_plots(report: FairnessReport, folder: Path) -> dict[str, Path]:
    """Each assessed feature's per-group figures as a PNG."""
    plots = {}
    for assessed in report.features:
        safe = assessed.feature.replace(" ", "")
        plots[f"groups-{safe}"] = group_plot(
            assessed.groups, assessed.feature, folder / f"groups-{safe}.png"
        )
    return plots


def run(folder: Path, split: Split, spec: Spec, calibration: Calibration) -> FairnessOutcome:
    return fairness_stage(split, spec, folder, calibration)


def disparities(fairness: dict) -> dict[str, float]:
    """`<feature>.<metric>` with its bootstrap bounds (`_low`, `_high`), per sensitive feature
    and intersection."""
    out: dict[str, float] = {}
    for assessed in FairnessReport.from_dict(fairness).features:
        feature = assessed.feature.replace(" x ", "_x_")
        for d in assessed.disparities:
            name = f"{feature}.{d.metric}"
            out |= {name: d.value, f"{name}_low": d.low, f"{name}_high": d.high}
    return out


STAGE = Stage(
    NAME,
    (*STUDENT_SECTIONS, "sensitive_features", "fairness", "decision"),
    (calibrate.NAME,),
    run,
    FairnessOutcome,
    figures=lambda o: {"threshold": o.threshold["value"], **disparities(o.fairness)},
    gates=lambda o: {"fairness": o.gate, "decision": o.decision_gate},
)
