"""Distillation: the loss mixes soft and hard targets; a student learns from the teacher."""

from __future__ import annotations

import numpy as np
import torch

from assay.compression.distill import UNLABELLED, Targets, distill, distillation_loss, logits
from assay.config import CompressionSpec
from assay.modeling.encoder import EncoderConfig, RecordClassifier
from tests.conftest import mixed_rows


def test_unlabelled_rows_contribute_only_the_soft_term():
    student = torch.tensor([[0.2, 1.0], [1.5, -0.3]])
    teacher = torch.tensor([[0.0, 2.0], [2.0, 0.0]])
    unlabelled = torch.tensor([UNLABELLED, UNLABELLED])
    soft_only = distillation_loss(student, teacher, unlabelled, 2.0, 1.0)
    assert torch.isclose(distillation_loss(student, teacher, unlabelled, 2.0, 0.5), soft_only * 0.5)
    labelled = distillation_loss(student, teacher, torch.tensor([1, 0]), 2.0, 0.0)
    assert torch.isclose(labelled, torch.nn.functional.cross_entropy(student, torch.tensor([1, 0])))
    assert distillation_loss(teacher, teacher, unlabelled, 2.0, 1.0).abs() < 1e-6


def test_student_learns_the_teachers_rule_from_soft_labels(exported, mixed_spec):
    model, _, _, tokenizer, test = exported
    pool = mixed_rows(600, 7)
    encoded = tokenizer.encode(pool)
    hard = np.full(len(pool), UNLABELLED)  # no true labels at all: the teacher is the only source
    config = EncoderConfig.from_spec(mixed_spec.model, tokenizer.vocab_size, tokenizer.length)
    settings = CompressionSpec(epochs=8, batch_size=32, learning_rate=5e-3, soft_weight=1.0)
    y_test = (test["y"] == "yes").to_numpy(dtype=np.int64)
    targets = Targets.of(encoded, logits(model, encoded), hard, settings)
    torch.manual_seed(0)
    student = RecordClassifier(config)
    result = distill(targets, tokenizer.encode(test), y_test, student, settings, seed=0)
    assert result.model is student
    learned = logits(student, tokenizer.encode(test)).argmax(axis=1)
    teacher = logits(model, tokenizer.encode(test)).argmax(axis=1)
    assert np.mean(teacher == y_test) > 0.9
    assert np.mean(learned == teacher) > 0.9
    assert result.history["valid_auc"][result.best_epoch - 1] == max(result.history["valid_auc"])


def test_weights_make_the_loss_a_weighted_mean():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 2), torch.randn(6, 2)
    labels = torch.tensor([1, 0, UNLABELLED, 1, 0, UNLABELLED])
    ones = distillation_loss(student, teacher, labels, 2.0, 0.7, torch.ones(6))
    assert torch.isclose(ones, distillation_loss(student, teacher, labels, 2.0, 0.7))
    # doubling the weight of row 0 is the same as listing row 0 twice
    doubled = torch.tensor([2.0, 1, 1, 1, 1, 1])
    again = torch.cat([student[:1], student]), torch.cat([teacher[:1], teacher])
    repeated = distillation_loss(*again, torch.cat([labels[:1], labels]), 2.0, 0.7)
    assert torch.isclose(distillation_loss(student, teacher, labels, 2.0, 0.7, doubled), repeated)
