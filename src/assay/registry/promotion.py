"""Settling a candidate: if this exact version was decided before, its decision stands;
otherwise the current champion is scored on the same test rows in this run, and the candidate
is decided and promoted (or not) against it by a paired bootstrap of the difference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from assay.config import Spec
from assay.home import Home
from assay.modeling.paired import PairedRule
from assay.registry.audit import AuditLog
from assay.registry.models import (
    CHAMPION,
    Candidate,
    Decision,
    decide,
    download,
    finish_recorded,
    holder,
    promote,
)
from assay.serving.predictor import Predictor


@dataclass(frozen=True)
class CandidateResults:
    """What a candidate is decided on: every gate's verdict, and its probabilities on the test
    rows with their labels (the champion is scored on the same rows, in the same run)."""

    gates: dict[str, dict]
    test: pd.DataFrame
    labels: np.ndarray
    scores: np.ndarray


def promotion_rule(spec: Spec) -> PairedRule:
    """The spec's margin, resamples and seed for the candidate-against-champion comparison."""
    registry = spec.registry
    return PairedRule(registry.promotion_margin, registry.promotion_resamples, spec.split.seed)


def champion_scores(
    home: Home, name: str, candidate: Candidate, test: pd.DataFrame
) -> tuple[str, np.ndarray] | None:
    """(version, probabilities) of the current champion on these test rows, scored now by its
    own package and policy; None when there is no other champion."""
    current = holder(home, name, CHAMPION)
    if current is None or current == candidate.version:
        return None
    return current, Predictor.load(download(home, name, current)).probabilities(test)


def settle(
    home: Home, candidate: Candidate, results: CandidateResults, rule: PairedRule, audit: AuditLog
) -> Decision:
    if candidate.reused:
        recorded = finish_recorded(home, candidate, audit)
        if recorded is not None:
            return recorded
    y, scores = results.labels, results.scores
    champion = champion_scores(home, candidate.name, candidate, results.test)
    versus = rule.compare(y, scores, champion[1]) if champion else None
    decision = decide(results.gates, float(roc_auc_score(y, scores)), versus, rule)
    decision.evidence["champion_version"] = champion[0] if champion else None
    promote(home, candidate, decision, audit)
    return decision
