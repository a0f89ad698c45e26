"""DP-SGD with Opacus on the project's own encoder. Under LoRA the adapters (and peft's
trainable copies of the head and numeric embeddings) move and every frozen weight stays
bit-identical (the symptom of meta-pytorch/opacus#820 was adapters that did not train); with
no noise and no clipping one DP-SGD step is one plain step, so the per-row gradients are right;
an empty Poisson batch is a counted step; the same seed gives the same model."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from opacus import PrivacyEngine
from peft import get_peft_model
from torch import nn

from assay.config import FinetuneSpec
from assay.modeling.encoder import (
    EncoderConfig,
    RecordClassifier,
    tensors,
    use_per_row_positions,
)
from assay.modeling.finetune import lora_config
from assay.modeling.tokenizer import Encoded
from assay.privacy.budget import StageSteps, composed_epsilon
from assay.privacy.dpsgd import PrivateSGD, make_private

CONFIG = EncoderConfig(
    vocab_size=30,
    length=6,
    hidden_size=16,
    num_layers=2,
    num_heads=2,
    intermediate_size=32,
    dropout=0.1,
    numeric_frequencies=4,
)
LORA = FinetuneSpec(method="lora", lora_r=4, lora_alpha=8)


@pytest.fixture(autouse=True)
def _quiet():
    # Opacus warns that its noise is not drawn by a secure RNG: true, and expected in tests
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def rows(n: int, seed: int = 0) -> tuple[Encoded, torch.Tensor]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 30, (n, 6)).astype(np.int64)
    ids[:, 0] = 2
    values = rng.random((n, 6)).astype(np.float32)
    numeric = np.zeros((n, 6), np.float32)
    numeric[:, 1:3] = 1
    attention = np.ones((n, 6), np.int64)
    attention[: n // 2, -1] = 0
    return Encoded(ids, values, numeric, attention), torch.from_numpy(rng.integers(0, 2, n))


def lora_model(config: EncoderConfig = CONFIG, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return get_peft_model(RecordClassifier(config), lora_config(LORA))


def train(model: nn.Module, data: Encoded, y: torch.Tensor, noise: float, seed: int = 0):
    engine = PrivacyEngine(accountant="prv")
    trainable = [p for p in model.parameters() if p.requires_grad]
    sgd = PrivateSGD(engine, noise, 1.0, seed)
    private = make_private(sgd, model, torch.optim.AdamW(trainable, lr=1e-2), len(y), 16)
    private.module.train()
    steps = 0
    for index in private.batches():
        private.step(
            lambda i: nn.functional.cross_entropy(private.module(*tensors(data.take(i))), y[i]),
            index,
        )
        steps += 1
        if len(index):  # every trainable parameter got one gradient per row of the batch
            for name, p in model.named_parameters():
                sampled = getattr(p, "grad_sample", None)
                assert p.requires_grad == (sampled is not None), name
                assert sampled is None or sampled.shape[0] == len(index), name
    return private, steps


def test_lora_adapters_train_and_frozen_weights_do_not():
    data, y = rows(64)
    model = lora_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any("modules_to_save" in n for n in trainable)
    private, _ = train(model, data, y, noise=1.0)
    after = dict(model.named_parameters())
    moved = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert moved == trainable
    merged = private.unwrap().merge_and_unload()
    assert isinstance(merged, RecordClassifier)


def test_torch_notice_that_hooks_fire_on_output_gradients_is_not_shown():
    """Under LoRA no hooked module's input needs a gradient, so torch notes (each epoch) that
    the hooks fire with the output gradients: what Opacus computes per-row gradients from."""
    data, y = rows(32)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        train(lora_model(), data, y, noise=1.0)
    assert not [w for w in seen if "Full backward hook" in str(w.message)]


def test_without_noise_or_clipping_a_dp_step_is_a_plain_step():
    """Stronger than 'the weights move' (noise moves every trainable weight, whatever its
    gradient): lora_B is set non-zero so lora_A's gradient is not 0, dropout is off."""
    data, y = rows(16)
    config = replace(CONFIG, dropout=0.0)

    def model() -> nn.Module:
        built = get_peft_model(
            RecordClassifier(config), lora_config(LORA.model_copy(update={"lora_dropout": 0.0}))
        )
        with torch.no_grad():
            for name, p in built.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
        return built

    torch.manual_seed(0)
    plain = model()
    torch.manual_seed(0)
    dp = model()
    sgd = torch.optim.SGD([p for p in plain.parameters() if p.requires_grad], lr=0.5)
    nn.functional.cross_entropy(plain(*tensors(data)), y).backward()
    sgd.step()
    exact = PrivateSGD(PrivacyEngine(), noise=0.0, max_grad_norm=1e6, seed=0)
    sgd = torch.optim.SGD([p for p in dp.parameters() if p.requires_grad], lr=0.5)
    private = make_private(exact, dp, sgd, 16, 16)
    private.module.train()
    every_row = np.arange(16)
    private.step(
        lambda i: nn.functional.cross_entropy(private.module(*tensors(data.take(i))), y[i]),
        every_row,
    )
    for (name, a), b in zip(plain.named_parameters(), dp.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


def test_an_empty_batch_is_a_noise_only_step_the_accountant_counts():
    data, y = rows(40)
    model = lora_model()
    engine = PrivacyEngine(accountant="prv")
    head = next(
        p for n, p in model.named_parameters() if "modules_to_save" in n and p.requires_grad
    )
    sgd = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    private = make_private(PrivateSGD(engine, 1.0, 1.0, seed=3), model, sgd, 40, 1)
    private.module.train()
    sizes, moved_on_empty = [], []
    for index in private.batches():
        before = head.detach().clone()
        private.step(
            lambda i: nn.functional.cross_entropy(private.module(*tensors(data.take(i))), y[i]),
            index,
        )
        sizes.append(len(index))
        if not len(index):
            moved_on_empty.append(not torch.equal(before, head.detach()))
    assert sizes.count(0) > 0 and all(moved_on_empty)
    ((noise, rate, steps),) = engine.accountant.history
    assert steps == len(sizes) and rate == pytest.approx(1 / 40)
    assert engine.get_epsilon(1e-5) == pytest.approx(
        composed_epsilon([StageSteps("finetune", rate, steps)], noise, 1e-5, "prv"), rel=1e-6
    )


def test_the_same_seed_gives_the_same_private_model():
    data, y = rows(64)

    def trained(seed: int) -> list[torch.Tensor]:
        model = lora_model()  # seeds torch: initialisation and dropout
        train(model, data, y, noise=1.0, seed=seed)
        return [p.detach() for p in model.parameters()]

    first, second, other = trained(5), trained(5), trained(6)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_every_weight_of_the_whole_encoder_gets_its_per_row_gradient():
    """Without LoRA every weight trains (pretraining and distillation): the position embedding
    gets one gradient per row only with per-row position ids, and then one DP-SGD step without
    noise or clipping is one plain step for every weight."""
    data, y = rows(16)
    config = replace(CONFIG, dropout=0.0)

    def step(model: nn.Module, private: bool) -> None:
        sgd = torch.optim.SGD(model.parameters(), lr=0.5)
        if not private:
            nn.functional.cross_entropy(model(*tensors(data)), y).backward()
            sgd.step()
            return
        exact = PrivateSGD(PrivacyEngine(), noise=0.0, max_grad_norm=1e6, seed=0)
        wrapped = make_private(exact, model, sgd, 16, 16)
        wrapped.module.train()
        every_row = np.arange(16)
        wrapped.step(
            lambda i: nn.functional.cross_entropy(model(*tensors(data.take(i))), y[i]), every_row
        )

    torch.manual_seed(0)
    plain, shared, per_row = (RecordClassifier(config) for _ in range(3))
    per_row.load_state_dict(plain.state_dict())
    shared.load_state_dict(plain.state_dict())
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        step(shared, private=True)  # BERT's shared [1, length] position ids
    use_per_row_positions(per_row, enabled=True)
    step(plain, private=False)
    step(per_row, private=True)
    for (name, a), b in zip(plain.named_parameters(), per_row.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
