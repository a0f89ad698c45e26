"""The compression stage end to end on the tiny mixed-column model: the student learns from an
ensemble of the teacher and the reference family (weighted on validation rows), and a pruned
student the validation rows find fragile under int8 gives way to the unpruned one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assay.compression.stage import compress_stage
from assay.data.split import Split
from assay.modeling.teacher import finetune_stage, pretrain_stage
from assay.stages.baseline import fit_and_score_baseline
from tests.conftest import mixed_rows, mixed_spec_for

pytestmark = pytest.mark.slow  # trains a teacher, the reference family and two students


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stage")
    spec = mixed_spec_for(
        folder / "suite.json",
        compression={
            "student": {"hidden_size": 16, "num_heads": 2, "intermediate_size": 32},
            "epochs": 4, "batch_size": 64, "synthetic_rows": 300,
            "pruning": {"recovery_epochs": 1, "importance_rows": 256},
            "gate": {"max_size_ratio": 1.0, "max_auc_drop": 0.5, "min_agreement": 0.9,
                     "max_latency_ms": 20.0},
        },
    )  # fmt: skip
    split = Split(
        mixed_rows(600, 0),
        mixed_rows(200, 1),
        mixed_rows(300, 2),
        mixed_rows(200, 3).drop(columns=["y"]),
        mixed_rows(100, 4),
    )
    pretrained = pretrain_stage(split, spec, folder / "pretrain")
    teacher = finetune_stage(split, spec, Path(pretrained.folder), folder / "finetune")
    reference = fit_and_score_baseline(split, spec, folder / "baseline")
    return spec, split, Path(teacher.folder), Path(reference.model_dir), folder


def test_the_student_learns_from_the_weighted_ensemble(trained):
    spec, split, teacher, references, folder = trained
    outcome = compress_stage(split, spec, teacher, folder / "compress", references)
    weights = json.loads((folder / "compress" / "ensemble.json").read_text())["weights"]
    assert set(weights) == {"teacher", "boosting", "logistic"}
    assert sum(weights.values()) == pytest.approx(1.0)
    assert outcome.ensemble["weights"] == weights
    scores = np.load(outcome.ensemble_test_scores)
    assert scores.shape == (len(split.test),) and np.all((scores > 0) & (scores < 1))
    assert outcome.measurements["int8_auc"] > 0.8


def test_the_teacher_alone_when_asked(trained):
    spec, split, teacher, references, folder = trained
    alone = spec.model_copy(
        update={"compression": spec.compression.model_copy(update={"teacher": "teacher"})}
    )
    outcome = compress_stage(split, alone, teacher, folder / "alone", references)
    assert outcome.ensemble["weights"] == {"teacher": 1.0}


def test_a_pruned_student_fragile_under_int8_gives_way(trained, monkeypatch):
    """The int8 agreement the validation rows show is forced low (a fault injected on
    purpose): the unpruned student ships, and the summary says why."""
    spec, split, teacher, references, folder = trained
    monkeypatch.setattr("assay.compression.stage.agreement", lambda *args: 0.5)
    outcome = compress_stage(split, spec, teacher, folder / "fragile", references)
    assert outcome.pruning["not_kept"].startswith("its int8 model agrees with fp32 on 0.5000")
    assert outcome.student_params == outcome.pruning["params_before"]
    assert "not kept, the unpruned student ships" in outcome.pruning["summary"]
