"""Settling a candidate: if this exact version was decided before, its decision stands;
otherwise the current champion is scored on the same test rows in this run, and the candidate
is decided and promoted (or not) against it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from assay.home import Home
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


def champion_auc(
    home: Home, name: str, candidate: Candidate, test: pd.DataFrame, y: np.ndarray
) -> tuple[str, float] | None:
    """(version, ROC AUC) of the current champion on these test rows, scored now by its own
    package and policy; None when there is no other champion."""
    current = holder(home, name, CHAMPION)
    if current is None or current == candidate.version:
        return None
    scores = Predictor.load(download(home, name, current)).probabilities(test)
    return current, float(roc_auc_score(y, scores))


def settle(
    home: Home,
    candidate: Candidate,
    gates: dict[str, dict],
    test: pd.DataFrame,
    y: np.ndarray,
    candidate_scores: np.ndarray,
    margin: float,
    audit: AuditLog,
) -> Decision:
    if candidate.reused:
        recorded = finish_recorded(home, candidate, audit)
        if recorded is not None:
            return recorded
    champion = champion_auc(home, candidate.name, candidate, test, y)
    decision = decide(
        gates,
        float(roc_auc_score(y, candidate_scores)),
        champion[1] if champion else None,
        margin,
    )
    decision.evidence["champion_version"] = champion[0] if champion else None
    promote(home, candidate, decision, audit)
    return decision
