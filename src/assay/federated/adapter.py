"""FFA-LoRA (Sun et al., 2024): LoRA adapters whose A matrices stay at their seeded start and
whose B matrices train, with the head and numeric embeddings that peft trains whole. With A
fixed and shared, each layer's update B.A is linear in B, so the rows-weighted average of the
sites' B gives exactly the average of their updates; averaging A and B separately would not
(mean(B).mean(A) is not mean(B.A))."""

from __future__ import annotations

import torch
from peft import PeftModel, get_peft_model
from torch import nn

from assay.config import FinetuneSpec
from assay.modeling.encoder import EncoderConfig, RecordClassifier
from assay.modeling.finetune import lora_config


def ffa_lora_classifier(
    config: EncoderConfig,
    settings: FinetuneSpec,
    seed: int,
    encoder_state: dict[str, torch.Tensor] | None = None,
) -> PeftModel:
    """The classifier (on the pretrained encoder, when given) with FFA-LoRA adapters, A
    frozen."""
    torch.manual_seed(seed)
    base = RecordClassifier(config)
    if encoder_state is not None:
        base.encoder.load_state_dict(encoder_state)
    model = get_peft_model(base, lora_config(settings))
    for name, parameter in model.named_parameters():
        if "lora_A" in name:
            parameter.requires_grad_(False)
    return model


def shared_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What a round sends: every trained tensor (B, the head, numeric embeddings), by name."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def load_shared(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put a round's shared tensors into the model; a name that does not match is an error."""
    parameters = dict(model.named_parameters())
    trained = {n for n, p in parameters.items() if p.requires_grad}
    if set(state) != trained:
        raise ValueError(f"adapter state does not match the model: {sorted(set(state) ^ trained)}")
    for name, value in state.items():
        parameters[name].copy_(value)


def fedavg(states: list[dict[str, torch.Tensor]], rows: list[int]) -> dict[str, torch.Tensor]:
    """FedAvg: each tensor the average of the sites', weighted by their training rows."""
    total = float(sum(rows))
    return {
        name: sum(state[name] * (n / total) for state, n in zip(states, rows, strict=True))
        for name in states[0]
    }
