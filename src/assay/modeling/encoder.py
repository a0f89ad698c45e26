"""The record encoder: a `transformers` BERT over record tokens, plus a value embedding for
numeric cells, with two heads (masked-cell prediction for pretraining, classification).

The three networks are `transformers` models of one registered config (`model_type`
"assay-record"): `save_pretrained` writes config.json and model.safetensors (loading never
unpickles anything), `AutoModel.from_pretrained(folder)` loads a pretrained encoder,
`AutoModelForSequenceClassification.from_pretrained(folder)` a classifier (from a classifier's
folder, or an encoder's with a fresh head), and `PeftModel.from_pretrained(classifier,
adapter_folder)` puts a saved LoRA adapter on it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    BertConfig,
    BertModel,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.models.bert.modeling_bert import BertLayer
from transformers.pytorch_utils import prune_linear_layer
from transformers.utils import logging as transformers_logging

from assay.config import ModelSpec
from assay.modeling.tokenizer import Encoded


@dataclass(frozen=True)
class EncoderConfig:
    """Everything needed to rebuild the network (saved beside the weights)."""

    vocab_size: int
    length: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    dropout: float
    numeric_frequencies: int
    # After structured pruning: attention heads and feed-forward units kept in each block
    # (None: every block has num_heads and intermediate_size).
    layer_heads: list[int] | None = None
    layer_units: list[int] | None = None

    @classmethod
    def from_spec(cls, spec: ModelSpec, vocab_size: int, length: int) -> EncoderConfig:
        """The spec's network shape, plus the sizes only the fitted tokenizer knows."""
        shape = spec.model_dump(include={f.name for f in fields(cls)})
        return cls(vocab_size=vocab_size, length=length, **shape)


class RecordConfig(PretrainedConfig):
    """An EncoderConfig as a `transformers` config (config.json), so the Auto classes know
    which network a folder holds and how to build it."""

    model_type = "assay-record"

    def __init__(
        self,
        vocab_size: int = 2,
        length: int = 1,
        hidden_size: int = 16,
        num_layers: int = 1,
        num_heads: int = 1,
        intermediate_size: int = 16,
        dropout: float = 0.0,
        numeric_frequencies: int = 0,
        layer_heads: list[int] | None = None,
        layer_units: list[int] | None = None,
        **kwargs,
    ) -> None:
        self.vocab_size = vocab_size
        self.length = length
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.dropout = dropout
        self.numeric_frequencies = numeric_frequencies
        self.layer_heads = layer_heads
        self.layer_units = layer_units
        super().__init__(**kwargs)

    @classmethod
    def of(cls, shape: EncoderConfig) -> RecordConfig:
        return cls(**asdict(shape))

    def shape(self) -> EncoderConfig:
        return EncoderConfig(**{f.name: getattr(self, f.name) for f in fields(EncoderConfig)})


class RecordModel(PreTrainedModel):
    """What the record networks share as `transformers` models: their config class, and the
    prefix under which a classifier or pretraining model holds its encoder, so a classifier
    loads from an encoder's folder (the head is then new)."""

    config_class = RecordConfig
    base_model_prefix = "encoder"

    def __init__(self, config: RecordConfig | EncoderConfig) -> None:
        super().__init__(config if isinstance(config, RecordConfig) else RecordConfig.of(config))

    @property
    def shape(self) -> EncoderConfig:
        return self.config.shape()

    def init_weights(self) -> None:
        """Nothing to do on construction: each module drew its weights in its own constructor
        (torch's defaults, the BERT blocks BERT's), in an order the run's seed fixes, which a
        second pass would redraw. Weights a folder lacks are drawn by _init_weights."""

    @property
    def is_gradient_checkpointing(self) -> bool:
        """peft 0.21 reads this name when it wraps a model; transformers 5 renamed it and warns
        on every read of the old one (a FutureWarning on the console of each run)."""
        return self.is_activation_checkpointing

    def _init_weights(self, module: nn.Module) -> None:
        """For `from_pretrained`: draw the weights the folder lacks (a classifier's head when it
        loads an encoder) as the constructors do; `transformers` skips those it loaded."""
        if isinstance(module, (nn.Linear, nn.LayerNorm, PeriodicValue)):
            module.reset_parameters()


class PeriodicValue(nn.Module):
    """Per-column PLR embedding (Gorishniy et al. 2022): x -> ReLU(W_c [sin 2πf_c x, cos 2πf_c x]
    + b_c), with frequencies f_c and projection W_c learned separately for each position.

    x is a rank in [0, 1], so the initial frequencies must be high enough to resolve thresholds
    inside that range: N(0, 3^2) (sigma 0.5 gave nearly linear features and cost ~0.01 AUC)."""

    SIGMA = 3.0  # scale of the initial frequencies, in cycles per unit rank

    def __init__(self, length: int, frequencies: int, hidden: int) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.randn(length, frequencies) * self.SIGMA)
        self.weight = nn.Parameter(
            torch.randn(length, 2 * frequencies, hidden) / math.sqrt(2 * frequencies)
        )
        self.bias = nn.Parameter(torch.zeros(length, hidden))

    def reset_parameters(self) -> None:
        """The constructor's distributions (RecordModel._init_weights draws missing weights)."""
        nn.init.normal_(self.frequencies, std=self.SIGMA)
        nn.init.normal_(self.weight, std=1 / math.sqrt(self.weight.shape[1]))
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angle = 2 * math.pi * x.unsqueeze(-1) * self.frequencies  # [rows, length, k]
        periodic = torch.cat([angle.sin(), angle.cos()], dim=-1)  # [rows, length, 2k]
        # A batched MatMul per position (not einsum), so int8 quantization can reach the weight.
        projected = torch.matmul(periodic.transpose(0, 1), self.weight).transpose(0, 1)
        return torch.relu(projected + self.bias)


class RecordEncoder(RecordModel):
    """Token embeddings (+ value embeddings at numeric cells) through a BERT stack.

    The blocks are `transformers` BertLayers run in a loop here (not BertModel.forward) so that
    a caller that reads only [CLS] can have the last block compute only the [CLS] row: the same
    numbers, at a fraction of the last block's cost."""

    # DP-SGD needs one gradient per row for every trained weight; with BERT's [1, length]
    # position ids the position embedding gets one for the whole batch. Per-row ids give the
    # same numbers (off by default: the summation order of the plain gradient would change).
    per_row_positions = False

    def __init__(self, config: RecordConfig | EncoderConfig) -> None:
        super().__init__(config)
        config = self.shape
        self.bert = BertModel(
            BertConfig(
                vocab_size=config.vocab_size,
                hidden_size=config.hidden_size,
                num_hidden_layers=config.num_layers,
                num_attention_heads=config.num_heads,
                intermediate_size=config.intermediate_size,
                hidden_dropout_prob=config.dropout,
                attention_probs_dropout_prob=config.dropout,
                max_position_embeddings=config.length,
                type_vocab_size=1,
                pad_token_id=0,
            ),
            add_pooling_layer=False,
        )
        self.numeric_embedding = (
            PeriodicValue(config.length, config.numeric_frequencies, config.hidden_size)
            if config.numeric_frequencies
            else None
        )
        if config.layer_heads is not None and config.layer_units is not None:
            # A pruned network: blocks of the recorded sizes, for its saved weights to fill.
            sizes = zip(config.layer_heads, config.layer_units, strict=True)
            for layer, (heads, units) in zip(self.bert.encoder.layer, sizes, strict=True):
                keep_heads_and_units(layer, list(range(heads)), list(range(units)))
        self.post_init()

    def forward(
        self,
        ids: torch.Tensor,
        values: torch.Tensor,
        numeric: torch.Tensor,
        attention: torch.Tensor,
        *,
        cls_only: bool = False,
    ) -> torch.Tensor:
        """Hidden states [rows, length, hidden], or [rows, 1, hidden] for [CLS] with cls_only."""
        embedded = self.bert.embeddings.word_embeddings(ids)
        if self.numeric_embedding is not None:
            embedded = embedded + self.numeric_embedding(values) * numeric.unsqueeze(-1)
        positions = None  # BERT's own [1, length] buffer
        if self.per_row_positions:
            ids_per_row = self.bert.embeddings.position_ids[:, : ids.shape[1]]
            positions = ids_per_row.expand(ids.shape[0], -1).contiguous()
        hidden = self.bert.embeddings(inputs_embeds=embedded, position_ids=positions)
        # Additive mask [rows, 1, 1, length]: 0 where attended, a large negative at padding.
        # Without padding it is left out (attention's fastest kernels take no mask), except
        # while tracing for ONNX export, where the graph must keep it for every input.
        mask = None
        if torch.jit.is_tracing() or not bool(attention.all()):
            fill = torch.finfo(hidden.dtype).min
            mask = (1.0 - attention[:, None, None, :].to(hidden.dtype)) * fill
        *inner, last = self.bert.encoder.layer
        for layer in inner:
            hidden = layer(hidden, mask)
        return _cls_block(last, hidden, mask) if cls_only else last(hidden, mask)


def _cls_block(layer: BertLayer, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """BertLayer's computation for the first position only: [CLS] attends to every position,
    but no other position's output is computed."""
    attention = layer.attention.self
    rows = hidden.shape[0]
    cls = hidden[:, :1].contiguous()  # a strided view takes a different (rounding) matmul path

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(rows, x.shape[1], -1, attention.attention_head_size).transpose(1, 2)

    context = F.scaled_dot_product_attention(
        heads(attention.query(cls)),
        heads(attention.key(hidden)),
        heads(attention.value(hidden)),
        attn_mask=mask,
        dropout_p=attention.dropout.p if attention.training else 0.0,
    )
    attended = layer.attention.output(context.transpose(1, 2).reshape(rows, 1, -1), cls)
    return layer.output(layer.intermediate(attended), attended)


def keep_heads_and_units(layer: BertLayer, heads: list[int], units: list[int]) -> None:
    """Structurally shrink one block to the listed attention heads and feed-forward units:
    the linear layers are replaced by smaller ones holding only the kept rows/columns."""
    attention = layer.attention.self
    size = attention.attention_head_size
    dims = torch.tensor([h * size + i for h in heads for i in range(size)], dtype=torch.long)
    for name in ("query", "key", "value"):
        setattr(attention, name, prune_linear_layer(getattr(attention, name), dims))
    layer.attention.output.dense = prune_linear_layer(layer.attention.output.dense, dims, dim=1)
    attention.num_attention_heads = len(heads)
    attention.all_head_size = len(dims)
    kept = torch.tensor(units, dtype=torch.long)
    layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, kept)
    layer.output.dense = prune_linear_layer(layer.output.dense, kept, dim=1)


class MaskedCellModel(RecordModel):
    """Pretraining: predict the token of each masked cell from the rest of the row."""

    def __init__(self, config: RecordConfig | EncoderConfig) -> None:
        super().__init__(config)
        self.encoder = RecordEncoder(self.config)
        self.head = nn.Linear(self.shape.hidden_size, self.shape.vocab_size)
        self.post_init()

    def forward(self, ids, values, numeric, attention) -> torch.Tensor:
        return self.head(self.encoder(ids, values, numeric, attention))


class RecordClassifier(RecordModel):
    """Fine-tuning: the [CLS] vector through a small head to two logits."""

    def __init__(self, config: RecordConfig | EncoderConfig) -> None:
        super().__init__(config)
        self.encoder = RecordEncoder(self.config)
        self.classifier = nn.Sequential(
            nn.LayerNorm(self.shape.hidden_size),
            nn.Dropout(self.shape.dropout),
            nn.Linear(self.shape.hidden_size, 2),
        )
        self.post_init()

    def forward(self, ids, values, numeric, attention) -> torch.Tensor:
        return self.classifier(self.encoder(ids, values, numeric, attention, cls_only=True)[:, 0])


def tensors(batch: Encoded) -> tuple[torch.Tensor, ...]:
    """Model inputs for a slice of encoded rows."""
    return (
        torch.from_numpy(batch.ids),
        torch.from_numpy(batch.values),
        torch.from_numpy(batch.numeric),
        torch.from_numpy(batch.attention),
    )


@torch.no_grad()
def predict_proba(model: RecordClassifier, data: Encoded, batch_size: int = 2048) -> torch.Tensor:
    """Positive-class probabilities, in row order, in eval mode."""
    model.eval()
    out = [
        torch.softmax(model(*tensors(data.take(slice(i, i + batch_size)))), dim=-1)[:, 1]
        for i in range(0, len(data), batch_size)
    ]
    return torch.cat(out)


WEIGHTS = "model.safetensors"  # what save_pretrained writes beside config.json


def holds_weights(folder: Path) -> bool:
    """Whether `folder` holds a saved network (a pretrain folder does not when pretraining
    is off: it holds the tokenizer only)."""
    return (folder / WEIGHTS).is_file()


def load_shape(folder: Path) -> EncoderConfig:
    """The network shape saved in a model folder's config.json."""
    return RecordConfig.from_pretrained(folder).shape()


def load_encoder(folder: Path) -> RecordEncoder:
    """The pretrained encoder saved in `folder`."""
    return RecordEncoder.from_pretrained(folder)


def load_classifier(folder: Path) -> RecordClassifier:
    """The classifier saved in `folder`, in eval mode."""
    return RecordClassifier.from_pretrained(folder).eval()


def use_per_row_positions(model: nn.Module, *, enabled: bool) -> None:
    """Around DP-SGD: every encoder in `model` gives each row its own position ids (Opacus
    needs a per-row gradient for the position embedding); off again after, for ONNX export."""
    for module in model.modules():
        if isinstance(module, RecordEncoder):
            module.per_row_positions = enabled


# Saving or loading one of these networks takes milliseconds: transformers' per-file progress
# bars would only break up the run's own progress output.
transformers_logging.disable_progress_bar()
AutoConfig.register(RecordConfig.model_type, RecordConfig)
AutoModel.register(RecordConfig, RecordEncoder)
AutoModelForSequenceClassification.register(RecordConfig, RecordClassifier)
