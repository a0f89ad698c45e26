"""The encoder's own block loop computes what transformers' BertModel computes, and the
[CLS]-only last block computes exactly the [CLS] row of the full one."""

from __future__ import annotations

import warnings
from dataclasses import replace

import pytest
import torch
from peft import get_peft_model

from assay.config import FinetuneSpec
from assay.modeling.encoder import EncoderConfig, RecordClassifier, RecordEncoder, tensors
from assay.modeling.finetune import lora_config
from assay.modeling.tokenizer import RecordTokenizer
from tests.conftest import mixed_rows


@pytest.fixture
def encoded(mixed_spec):
    rows = mixed_rows(64, 3)
    tokenizer = RecordTokenizer.fit(rows, mixed_spec)
    config = EncoderConfig.from_spec(mixed_spec.model, tokenizer.vocab_size, tokenizer.length)
    ids, values, numeric, attention = tensors(tokenizer.encode(rows))
    attention[::2, -2:] = 0  # as if every other row's text were two subwords shorter
    return replace(config, num_layers=2), (ids, values, numeric, attention)


def test_block_loop_matches_bert_model_forward(encoded):
    config, (ids, values, numeric, attention) = encoded
    torch.manual_seed(0)
    encoder = RecordEncoder(config).eval()
    with torch.no_grad():
        ours = encoder(ids, values, numeric, attention)
        embedded = encoder.bert.embeddings.word_embeddings(ids)
        embedded = embedded + encoder.numeric_embedding(values) * numeric.unsqueeze(-1)
        reference = encoder.bert(inputs_embeds=embedded, attention_mask=attention)
    kept = attention.bool()  # padded positions' outputs are never read
    torch.testing.assert_close(ours[kept], reference.last_hidden_state[kept], atol=1e-5, rtol=0)


def test_cls_only_last_block_equals_the_full_blocks_first_row(encoded):
    config, inputs = encoded
    torch.manual_seed(0)
    encoder = RecordEncoder(config).eval()
    with torch.no_grad():
        full = encoder(*inputs)
        cls = encoder(*inputs, cls_only=True)
    assert cls.shape == (full.shape[0], 1, full.shape[2])
    torch.testing.assert_close(cls[:, 0], full[:, 0], atol=1e-5, rtol=0)


def test_classifier_scores_do_not_depend_on_parameter_flags(encoded):
    """Frozen (requires_grad=False) and trainable weights score identically under no_grad: a
    reloaded model must reproduce the scores saved by the stage that trained it."""
    config, inputs = encoded
    torch.manual_seed(0)
    model = RecordClassifier(config).eval()
    with torch.no_grad():
        trainable = model(*inputs)
        model.requires_grad_(False)
        frozen = model(*inputs)
    assert torch.equal(trainable, frozen)


def test_construction_draws_the_same_weights_as_plain_torch_modules(encoded):
    """As transformers models the networks keep the weights their constructors draw (no second
    initialisation pass), so a seed gives what it gave before they were PreTrainedModels."""
    config, _ = encoded
    torch.manual_seed(0)
    model = RecordClassifier(config)
    torch.manual_seed(0)
    encoder = RecordEncoder(config)
    layer_norm = torch.nn.LayerNorm(config.hidden_size)
    head = torch.nn.Linear(config.hidden_size, 2)  # after the LayerNorm (Dropout draws nothing)
    drawn = encoder.state_dict()
    assert all(torch.equal(drawn[k], v) for k, v in model.encoder.state_dict().items())
    assert torch.equal(model.classifier[0].weight, layer_norm.weight)
    assert torch.equal(model.classifier[2].weight, head.weight)
    assert torch.equal(model.classifier[2].bias, head.bias)


def test_wrapping_with_peft_warns_nothing(encoded):
    config, _ = encoded
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_peft_model(RecordClassifier(config), lora_config(FinetuneSpec()))
