"""Federated rounds in one process (the Prefect shell is tested in test_sites.py): FFA-LoRA
keeps A fixed so FedAvg of B is exact, only trained tensors cross the exchange, and the best
round's teacher learns what every site's rows hold."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from assay.data.split import Split
from assay.errors import SpecError
from assay.federated.adapter import fedavg, ffa_lora_classifier, load_shared, shared_state
from assay.federated.exchange import Exchange, read_tensors
from assay.federated.site import SiteData, answer_round, take_census
from assay.federated.stage import federated_finetune_stage
from assay.modeling.encoder import EncoderConfig
from assay.modeling.tokenizer import RecordTokenizer
from tests.conftest import mixed_rows, mixed_spec_for

SITES = ("north", "south")


@pytest.fixture
def spec(tmp_path):
    federation = {"sites": list(SITES), "rounds": 3, "local_epochs": 3}
    spec = mixed_spec_for(tmp_path / "suite.json", federation=federation)
    return spec.model_copy(
        update={"finetune": spec.finetune.model_copy(update={"learning_rate": 1e-2})}
    )


def site_split(seed: int, n: int) -> Split:
    return Split(
        mixed_rows(n, seed), mixed_rows(200, seed + 10), mixed_rows(10, seed + 20), None, None
    )


def test_averaging_b_with_a_frozen_averages_the_sites_updates_exactly(spec):
    tokenizer = RecordTokenizer.fit(mixed_rows(300, 0), spec)
    config = EncoderConfig.from_spec(spec.model, tokenizer.vocab_size, tokenizer.length)
    model = ffa_lora_classifier(config, spec.finetune, seed=0)
    a_names = [n for n, _ in model.named_parameters() if "lora_A" in n]
    assert a_names and not set(a_names) & set(shared_state(model))  # A never trains or travels
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        states.append({k: torch.randn_like(v) for k, v in shared_state(model).items()})
    layer = next(m for m in model.modules() if hasattr(m, "lora_B") and "default" in m.lora_B)

    def delta(state):
        load_shared(model, state)
        return layer.lora_B["default"].weight @ layer.lora_A["default"].weight

    expected = (delta(states[0]) * 300 + delta(states[1]) * 100) / 400
    assert torch.allclose(delta(fedavg(states, [300, 100])), expected, atol=1e-6)
    with pytest.raises(ValueError, match="does not match"):
        load_shared(model, {"nothing": torch.zeros(1)})


def test_rounds_train_a_teacher_from_the_sites_rows_and_send_only_adapter_tensors(spec, tmp_path):
    coordinator = site_split(0, 200)
    sites = [
        SiteData("north", site_split(1, 600), spec),
        SiteData("south", site_split(2, 300), spec),
    ]
    pretrained = tmp_path / "pretrain"
    tokenizer = RecordTokenizer.fit(coordinator.train, spec)
    tokenizer.save(pretrained / "tokenizer")  # pretraining off: the folder holds no encoder
    exchange = Exchange(tmp_path / "exchange")
    for local in sites:
        take_census(exchange, local, fingerprint=f"{local.name}-snapshot")
    asked = []

    def ask(mode: str, round_: int) -> None:
        asked.append((mode, round_))
        for local in sites:
            answer_round(exchange, round_, local, train=mode == "train")

    outcome = federated_finetune_stage(
        coordinator, spec, pretrained, tmp_path / "teacher", exchange, ask
    )
    assert asked == [("train", 1), ("train", 2), ("train", 3), ("evaluate", 4)]
    record = outcome.federation
    assert record["site_rows"] == {"north": 600, "south": 300}
    assert len(record["rounds"]) == 4 and 1 <= record["best_round"] <= 4
    assert set(record["site_auc"]) == set(SITES) and min(record["site_auc"].values()) > 0.8
    update = read_tensors(exchange.update(1, "north"))
    assert update and not any("lora_A" in k for k in update)
    assert set(update) == set(read_tensors(exchange.global_state(1)))
    assert record["rounds"][0]["bytes"] > 0
    y = (coordinator.test["y"] == "yes").to_numpy()
    assert roc_auc_score(y, np.load(outcome.test_scores)) > 0.8
    assert (tmp_path / "teacher" / "model.safetensors").is_file()


def test_a_federation_needs_two_distinct_site_names(tmp_path):
    for sites in (["one"], ["a", "a"], ["A b", "c"]):
        with pytest.raises((SpecError, ValueError)):
            mixed_spec_for(tmp_path / "suite.json", federation={"sites": sites})
