"""Pretraining and distillation by DP-SGD through the project's loops: each row's loss is its
own, the model learns, and the accountant spends exactly what was planned."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from opacus import PrivacyEngine

from assay.compression.distill import UNLABELLED, Targets, distill, logits
from assay.config import CompressionSpec
from assay.modeling.encoder import EncoderConfig, RecordClassifier
from assay.modeling.pretrain import IGNORE, per_row_loss, pretrain
from assay.modeling.sizes import pretrain_sizes
from assay.modeling.tokenizer import MASK, RecordTokenizer
from assay.privacy.budget import StageSteps, composed_epsilon, shared_noise
from assay.privacy.dpsgd import PrivateSGD
from tests.conftest import mixed_rows, tiny_classifier

EPSILON, DELTA = 8.0, 1e-4
POOL = 3000  # distillation trains the whole student: DP-SGD needs more rows than LoRA does


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():  # Opacus: the token ids need no gradient (true)
        warnings.simplefilter("ignore")
        yield


def test_each_row_counts_the_mean_of_its_own_masked_cells():
    logits_ = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[1, 4, IGNORE], [IGNORE, IGNORE, 2]])
    cell = torch.nn.functional.cross_entropy
    first = (cell(logits_[0, 0:1], labels[0, 0:1]) + cell(logits_[0, 1:2], labels[0, 1:2])) / 2
    second = cell(logits_[1, 2:3], labels[1, 2:3])
    assert torch.isclose(per_row_loss(logits_, labels), (first + second) / 2)
    nothing_masked = torch.full((1, 3), IGNORE)
    assert per_row_loss(logits_[:1], nothing_masked) == 0


@pytest.mark.slow  # ten seconds or more of DP-SGD pretraining
def test_private_pretraining_learns_within_its_budget(mixed_spec):
    train = mixed_rows(600, 0)
    tokenizer = RecordTokenizer.fit(train, mixed_spec)
    config = EncoderConfig.from_spec(mixed_spec.model, tokenizer.vocab_size, tokenizer.length)
    settings = mixed_spec.pretrain.model_copy(update={"epochs": 8, "batch_size": 32})
    sizes = pretrain_sizes(len(train), batch_size=32, epochs=8)
    planned = [StageSteps.planned("pretrain", len(train), sizes.batch_size, sizes.epochs)]
    noise = shared_noise(planned, EPSILON, DELTA, "rdp")
    engine = PrivacyEngine(accountant="rdp")
    result = pretrain(
        tokenizer.encode(train),
        config,
        settings,
        mask_id=tokenizer.token_id(MASK),
        seed=0,
        private=PrivateSGD(engine, noise, max_grad_norm=1.0, seed=0),
    )
    assert result.epoch_loss[-1] < 0.9 * result.epoch_loss[0], result.epoch_loss
    spent = engine.get_epsilon(DELTA)
    assert spent == composed_epsilon(planned, noise, DELTA, "rdp") and spent <= EPSILON


def test_private_distillation_learns_the_teachers_rule_within_its_budget(mixed_spec):
    test = mixed_rows(400, 1)
    teacher, tokenizer, _ = tiny_classifier(mixed_spec, mixed_rows(300, 0))
    config = EncoderConfig.from_spec(mixed_spec.model, tokenizer.vocab_size, tokenizer.length)
    pool = tokenizer.encode(mixed_rows(POOL, 7))
    settings = CompressionSpec(epochs=8, batch_size=100, learning_rate=2e-2, soft_weight=1.0)
    targets = Targets.of(pool, logits(teacher, pool), np.full(POOL, UNLABELLED), settings)
    planned = [StageSteps.planned("distill", POOL, 100, 8)]
    noise = shared_noise(planned, EPSILON, DELTA, "rdp")
    engine = PrivacyEngine(accountant="rdp")
    y_test = (test["y"] == "yes").to_numpy(dtype=np.int64)
    torch.manual_seed(0)
    student = RecordClassifier(config)
    private = PrivateSGD(engine, noise, max_grad_norm=1.0, seed=0)
    settings = settings.model_copy(update={"patience": 8})
    distill(targets, tokenizer.encode(test), y_test, student, settings, seed=0, private=private)
    learned = logits(student, tokenizer.encode(test)).argmax(axis=1)
    agreement = np.mean(learned == logits(teacher, tokenizer.encode(test)).argmax(axis=1))
    assert agreement > 0.9, agreement  # above 0.999 here (0.575 from 600 rows)
    spent = engine.get_epsilon(DELTA)
    assert spent == composed_epsilon(planned, noise, DELTA, "rdp") and spent <= EPSILON
