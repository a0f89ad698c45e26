"""Conformal review: split conformal fit on the calibration rows (rows nothing else reads),
one quantile for all rows or one per group (`uncertainty.group_by`); test coverage and the
rows sent to review, overall and per sensitive group."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from assay.config import Spec
from assay.data.labels import labels
from assay.data.split import Split
from assay.responsible.conformal import (
    conformal_metrics,
    coverage_by_group,
    empirical_coverage,
    fit_conformal,
    fit_group_conformal,
)
from assay.serving.groups import cells, sensitive_columns
from assay.serving.policy import DecisionPolicy, GroupQuantiles, needs_review, prediction_sets
from assay.stages import calibrate
from assay.stages.calibrate import Calibration, scored_frames
from assay.stages.compress import STUDENT_SECTIONS
from assay.stages.stage import Stage

NAME = "conformal"


@dataclass(frozen=True)
class ConformalReview:
    """The quantile(s), the coverage they reach on the test rows, and who goes to review."""

    target_coverage: float
    qhat: float
    group_by: list[str]
    group_qhats: dict | None  # GroupQuantiles as a dict, when `uncertainty.group_by` is set
    calibration_rows: int
    empirical_coverage: float
    review_share: float
    groups: dict  # per sensitive feature and intersection: each group's coverage and review
    notes: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def conformal_stage(
    split: Split, spec: Spec, folder: Path, calibration: Calibration
) -> ConformalReview:
    """Split conformal fit on the calibration rows (one quantile, or one per group of
    `uncertainty.group_by`), coverage and review share measured on test rows, overall and per
    sensitive group and intersection."""
    settings, frames = spec.uncertainty, scored_frames(split, spec)
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
    review = ConformalReview(
        target_coverage=coverage,
        qhat=qhat,
        group_by=list(settings.group_by),
        group_qhats=asdict(quantiles) if quantiles else None,
        calibration_rows=len(held),
        empirical_coverage=empirical_coverage(sets, y_test),
        review_share=float(needs_review(sets).mean()),
        groups=coverage_by_group(sets, y_test, groups, spec.fairness.min_group_size),
        notes=notes,
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conformal.json").write_text(json.dumps(review.to_dict(), indent=2))
    return review


def run(folder: Path, split: Split, spec: Spec, calibration: Calibration) -> ConformalReview:
    return conformal_stage(split, spec, folder, calibration)


STAGE = Stage(
    NAME,
    # the small-group flag only: a changed fairness gate or mitigation keeps its coverage
    (*STUDENT_SECTIONS, "sensitive_features", "fairness.min_group_size", "uncertainty"),
    (calibrate.NAME,),
    run,
    ConformalReview,
    figures=lambda review: conformal_metrics(review.to_dict()),
)
