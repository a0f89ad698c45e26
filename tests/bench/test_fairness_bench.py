"""The fairness benchmark's augmentation row on generated scores: the overall paired difference
decides whether augmentation ships, and every group of an augmented feature gets ROC AUC and
TPR intervals for both options."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from assay.config import load_spec
from assay.data.labels import labels
from bench.fairness import MAX_AUC_COST, augmentation_figures
from bench.quality import spec_split
from tests.synthetic import write_dataset


@pytest.fixture
def case(tmp_path):
    change = {"sensitive_features": ["home_owner", "region"], "augment": {"groups": ["region"]}}
    spec = load_spec(write_dataset(tmp_path / "churn", spec=change))
    split = spec_split(spec)
    y = labels(split.test, spec)
    rng = np.random.default_rng(0)
    good = np.clip(0.5 * y + rng.normal(0.25, 0.2, len(y)), 0, 1)

    def outcome(name: str, scores: np.ndarray) -> SimpleNamespace:
        path = tmp_path / f"{name}.npy"
        np.save(path, scores)
        return SimpleNamespace(test_scores=str(path), threshold={"value": 0.5})

    return spec, split, y, good, outcome


def test_augmentation_ships_when_it_costs_no_roc_auc(case):
    spec, split, _, good, outcome = case
    figures = augmentation_figures(split, spec, outcome("plain", good), outcome("same", good))
    assert figures["ships"] and figures["overall"]["difference"] == 0
    assert {g["group"] for g in figures["groups"]} == set(split.test["region"].astype(str))
    for g in figures["groups"]:
        for metric in ("roc_auc", "tpr"):
            for point, low, high in g[metric].values():
                assert low <= point <= high
        assert g["roc_auc"]["plain"] == g["roc_auc"]["augmented"]


def test_augmentation_that_lowers_roc_auc_does_not_ship(case):
    spec, split, y, good, outcome = case
    rng = np.random.default_rng(1)
    worse = np.where(rng.random(len(y)) < 0.2, rng.random(len(y)), good)
    figures = augmentation_figures(split, spec, outcome("plain", good), outcome("worse", worse))
    assert figures["overall"]["difference"] < -MAX_AUC_COST and not figures["ships"]
    assert figures["overall"]["low"] < figures["overall"]["difference"] < figures["overall"]["high"]
