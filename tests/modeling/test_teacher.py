"""The transformer teacher on tiny configs: tokenizer, pretraining, LoRA, save and reload."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from peft import LoraConfig, PeftModel
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForSequenceClassification

from assay.config import Spec
from assay.data.split import Split
from assay.errors import SpecError
from assay.modeling.encoder import EncoderConfig, RecordClassifier, RecordEncoder, predict_proba
from assay.modeling.finetune import finetune, lora_config
from assay.modeling.pretrain import pretrain
from assay.modeling.rows import pretraining_rows
from assay.modeling.teacher import Teacher, finetune_stage, pretrain_stage
from assay.modeling.tokenizer import MASK, RecordTokenizer
from tests.conftest import mixed_rows


@pytest.fixture
def spec(mixed_spec) -> Spec:
    return mixed_spec


def _split(train: int, valid: int, test: int, unlabelled: int) -> Split:
    return Split(
        mixed_rows(train, 0),
        mixed_rows(valid, 1),
        mixed_rows(test, 2),
        mixed_rows(unlabelled, 3).drop(columns=["y"]),
        mixed_rows(50, 4),
    )


def test_tokenizer_round_trip_unseen_and_missing_values(tmp_path, spec):
    train = mixed_rows(200, 0)
    tokenizer = RecordTokenizer.fit(train, spec)
    odd = pd.DataFrame(
        {
            "x": [np.nan, 1e9],
            "colour": pd.array(["violet", None], dtype="string"),
            "note": pd.array([None, "zebra"], dtype="string"),
        }
    )
    encoded = tokenizer.encode(odd)
    assert encoded.ids.shape == (2, tokenizer.length) == (2, 1 + 2 + 4)
    cells = tokenizer.cells.id_to_token
    assert [cells(int(i)) for i in encoded.ids[:, 1]] == ["colour=[UNK]", "colour=[NA]"]
    assert cells(int(encoded.ids[0, 2])) == "x#[NA]" and encoded.numeric[0, 2] == 0
    assert cells(int(encoded.ids[1, 2])) == "x#b3" and encoded.values[1, 2] == 1.0
    assert encoded.attention[0, 3:].sum() == 0, "an empty text cell is all padding"
    reloaded = RecordTokenizer.load(tokenizer.save(tmp_path / "tok"))
    again = reloaded.encode(train)
    np.testing.assert_array_equal(again.ids, tokenizer.encode(train).ids)
    np.testing.assert_array_equal(again.values, tokenizer.encode(train).values)


def test_large_frames_are_encoded_in_chunks_with_the_same_result(spec, monkeypatch):
    rows = mixed_rows(230, 4)
    tokenizer = RecordTokenizer.fit(rows, spec)
    whole = tokenizer.encode(rows)
    monkeypatch.setattr("assay.modeling.tokenizer.ENCODE_ROWS", 50)
    chunked = tokenizer.encode(rows)
    for field in ("ids", "values", "numeric", "attention"):
        np.testing.assert_array_equal(getattr(chunked, field), getattr(whole, field))


def test_numeric_bins_are_fit_on_training_rows_only(spec):
    tokenizer = RecordTokenizer.fit(pd.DataFrame({**mixed_rows(100, 0)}), spec)
    shifted = mixed_rows(100, 1).assign(x=lambda f: f["x"] + 100)
    ids = tokenizer.encode(shifted).ids[:, 2]
    assert {tokenizer.cells.id_to_token(int(i)) for i in ids} == {"x#b3"}


def test_masked_cell_loss_falls(spec):
    train = mixed_rows(400, 0)
    tokenizer = RecordTokenizer.fit(train, spec)
    config = EncoderConfig.from_spec(spec.model, tokenizer.vocab_size, tokenizer.length)
    settings = spec.pretrain.model_copy(update={"epochs": 12})
    result = pretrain(
        tokenizer.encode(train), config, settings, mask_id=tokenizer.token_id(MASK), seed=0
    )
    assert result.epoch_loss[-1] < 0.7 * result.epoch_loss[0]


def test_lora_trains_only_adapters_and_head_and_keeps_base_weights(spec):
    train = mixed_rows(300, 0)
    tokenizer = RecordTokenizer.fit(train, spec)
    config = EncoderConfig.from_spec(spec.model, tokenizer.vocab_size, tokenizer.length)
    torch.manual_seed(1)
    pretrained = RecordClassifier(config).encoder.state_dict()
    encoded = tokenizer.encode(train)
    y = (train["y"] == "yes").to_numpy(dtype=np.int64)
    result = finetune(
        encoded, y, encoded, y, config, spec.finetune, seed=0, encoder_state=pretrained
    )
    assert 0 < result.trainable_fraction < 0.5
    merged = result.model.encoder.state_dict()
    # Frozen everywhere LoRA does not touch: embeddings, layer norms, biases of adapted layers.
    for name in (
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.encoder.layer.0.attention.self.query.bias",
    ):
        torch.testing.assert_close(merged[name], pretrained[name])
    # Adapted weights moved by exactly the merged low-rank update.
    delta = (
        merged["bert.encoder.layer.0.attention.self.query.weight"]
        - pretrained["bert.encoder.layer.0.attention.self.query.weight"]
    )
    assert 0 < torch.linalg.matrix_rank(delta) <= lora_config(spec.finetune).r
    adapter_keys = set(result.adapter_state)
    assert any("lora_A" in k for k in adapter_keys) and any("classifier" in k for k in adapter_keys)
    assert not any("word_embeddings" in k for k in adapter_keys)


def test_full_finetune_trains_everything_and_learns_the_rule(spec):
    train, held_out = mixed_rows(300, 0), mixed_rows(200, 1)
    tokenizer = RecordTokenizer.fit(train, spec)
    config = EncoderConfig.from_spec(spec.model, tokenizer.vocab_size, tokenizer.length)
    y = (train["y"] == "yes").to_numpy(dtype=np.int64)
    y_held = (held_out["y"] == "yes").to_numpy(dtype=np.int64)
    settings = spec.finetune.model_copy(
        update={"method": "full", "epochs": 6, "learning_rate": 5e-3}
    )
    result = finetune(
        tokenizer.encode(train), y, tokenizer.encode(held_out), y_held, config, settings, seed=0
    )
    assert result.trainable_params == result.total_params and result.adapter_state is None
    scores = predict_proba(result.model, tokenizer.encode(held_out)).numpy()
    assert np.mean((scores >= 0.5) == y_held) > 0.9


def test_saved_teacher_reloads_with_identical_predictions(tmp_path, spec):
    split = _split(300, 100, 120, 50)
    pretrained = pretrain_stage(split, spec, tmp_path / "pretrain")
    assert pretrained.rows == 450 and len(pretrained.epoch_loss) == 2
    outcome = finetune_stage(split, spec, tmp_path / "pretrain", tmp_path / "teacher")
    folder = tmp_path / "teacher"
    assert (folder / "adapter" / "adapter_model.safetensors").is_file()
    assert (folder / "adapter" / "adapter_config.json").is_file()
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.bin"))
    scores = np.load(outcome.test_scores)
    reloaded = Teacher.load(folder).predict_proba(split.test)
    np.testing.assert_array_equal(reloaded, scores)


def test_stage_folders_load_with_the_auto_classes_and_peft(tmp_path, spec):
    """The Hugging Face convention: AutoModel loads the pretrained encoder, the Auto classifier
    the teacher, and the saved adapter on a classifier built from the folder its config names
    (the pretrain folder) gives the teacher's predictions."""
    split = _split(300, 100, 120, 50)
    pretrain_stage(split, spec, tmp_path / "pretrain")
    finetune_stage(split, spec, tmp_path / "pretrain", tmp_path / "teacher")
    encoder = AutoModel.from_pretrained(tmp_path / "pretrain")
    assert isinstance(encoder, RecordEncoder)
    saved = load_file(str(tmp_path / "pretrain" / "model.safetensors"))
    assert saved.keys() == encoder.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in encoder.state_dict().items())

    teacher = Teacher.load(tmp_path / "teacher")
    rows = teacher.tokenizer.encode(split.test)
    expected = predict_proba(teacher.model, rows).numpy()
    auto = AutoModelForSequenceClassification.from_pretrained(tmp_path / "teacher")
    np.testing.assert_array_equal(predict_proba(auto, rows).numpy(), expected)

    adapter = tmp_path / "teacher" / "adapter"
    named = LoraConfig.from_pretrained(str(adapter)).base_model_name_or_path
    assert named == str((tmp_path / "pretrain").resolve())
    base = AutoModelForSequenceClassification.from_pretrained(named)
    with_adapter = PeftModel.from_pretrained(base, str(adapter)).eval()
    np.testing.assert_allclose(predict_proba(with_adapter, rows).numpy(), expected, atol=1e-5)


def test_pretraining_is_deterministic(tmp_path, spec):
    split = _split(200, 50, 50, 0)
    first = pretrain_stage(split, spec, tmp_path / "a")
    second = pretrain_stage(split, spec, tmp_path / "b")
    assert first.epoch_loss == second.epoch_loss
    a = (tmp_path / "a" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_pretraining_can_start_from_a_checkpoint_folder(tmp_path, spec):
    split = _split(200, 50, 50, 0)
    pretrain_stage(split, spec, tmp_path / "first")
    resumed = spec.model_copy(
        update={"model": spec.model.model_copy(update={"checkpoint": tmp_path / "first"})}
    )
    outcome = pretrain_stage(split, resumed, tmp_path / "second")
    fresh = pretrain_stage(split, spec, tmp_path / "fresh")
    assert outcome.epoch_loss[0] < fresh.epoch_loss[0], "a warm start begins with a lower loss"


def test_mismatched_or_missing_checkpoint_is_a_clear_error(tmp_path, spec):
    split = _split(100, 20, 20, 0)
    pretrain_stage(split, spec, tmp_path / "first")
    wider = spec.model.model_copy(update={"hidden_size": 32, "checkpoint": tmp_path / "first"})
    with pytest.raises(SpecError, match=r"model\.checkpoint: .* was trained with"):
        pretrain_stage(split, spec.model_copy(update={"model": wider}), tmp_path / "x")
    empty = spec.model.model_copy(update={"checkpoint": tmp_path})
    with pytest.raises(SpecError, match=r"holds no saved encoder \(model\.safetensors\)"):
        pretrain_stage(split, spec.model_copy(update={"model": empty}), tmp_path / "y")


def test_pretraining_rows_are_every_non_test_row_or_a_seeded_cap(spec):
    parts = [mixed_rows(n, seed=n) for n in (300, 50, 40, 120, 30)]
    split = Split(*parts)
    corpus = pretraining_rows(split, spec, split.train)
    assert len(corpus) == 300 + 50 + 120  # train, valid and unlabelled; never test, calibration
    capped = spec.model_copy(
        update={"pretrain": spec.pretrain.model_copy(update={"max_rows": 200})}
    )
    first, second = (
        pretraining_rows(split, capped, split.train),
        pretraining_rows(split, capped, split.train),
    )
    assert len(first) == 200
    pd.testing.assert_frame_equal(first, second)
