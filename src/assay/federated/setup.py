"""What every site starts from, written once by the coordinator into the exchange: the
coordinator's tokenizer and encoder shape, the FFA-LoRA adapter's starting weights (A included,
so every site freezes the same A), and the settings every site trains with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from peft import PeftModel

from assay.config import FinetuneSpec
from assay.federated.adapter import ffa_lora_classifier
from assay.federated.exchange import Exchange, read_json, read_tensors, write_json, write_tensors
from assay.modeling.encoder import EncoderConfig, RecordConfig, load_shape
from assay.modeling.tokenizer import RecordTokenizer


@dataclass(frozen=True)
class Setup:
    tokenizer: RecordTokenizer
    config: EncoderConfig
    settings: FinetuneSpec
    seed: int
    rounds: int
    local_epochs: int
    class_weights: tuple[float, float]  # from every site's census: one loss for all sites

    def model(self, initial: dict[str, torch.Tensor]) -> PeftModel:
        model = ffa_lora_classifier(self.config, self.settings, self.seed)
        model.load_state_dict(initial)
        return model


def write_setup(exchange: Exchange, setup: Setup, model: PeftModel) -> None:
    folder = exchange.setup
    setup.tokenizer.save(folder / "tokenizer")
    RecordConfig.of(setup.config).save_pretrained(folder)
    write_tensors(folder / "initial.safetensors", model.state_dict())
    write_json(
        folder / "setup.json",
        {
            "settings": setup.settings.model_dump(mode="json"),
            "seed": setup.seed,
            "rounds": setup.rounds,
            "local_epochs": setup.local_epochs,
            "class_weights": list(setup.class_weights),
        },
    )


def read_setup(exchange: Exchange) -> tuple[Setup, dict[str, torch.Tensor]]:
    folder: Path = exchange.setup
    raw = read_json(folder / "setup.json")
    setup = Setup(
        tokenizer=RecordTokenizer.load(folder / "tokenizer"),
        config=load_shape(folder),
        settings=FinetuneSpec(**raw["settings"]),
        seed=raw["seed"],
        rounds=raw["rounds"],
        local_epochs=raw["local_epochs"],
        class_weights=tuple(raw["class_weights"]),
    )
    return setup, read_tensors(folder / "initial.safetensors")


def balanced_weights(rows: int, positives: int) -> tuple[float, float]:
    """Inverse class sizes over all sites' rows, as fine-tuning weights one site's."""
    counts = np.array([rows - positives, positives], dtype=float)
    return tuple(float(w) for w in counts.sum() / (2 * counts))
