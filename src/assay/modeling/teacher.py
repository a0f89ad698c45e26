"""The transformer teacher, stage by stage: tokenizer + pretrained encoder, then the
fine-tuned classifier. Each stage writes one folder; later stages and reloads read it.

Folder contents (no pickles anywhere), in the Hugging Face convention (assay.modeling.encoder):
  pretrain/  tokenizer/, config.json + model.safetensors: the encoder (AutoModel loads it;
             absent if pretraining is off)
  teacher/   tokenizer/, config.json + model.safetensors: the classifier, LoRA merged,
             adapter/ (adapter_model.safetensors + adapter_config.json: the adapter on its own,
             whose base_model_name_or_path is the pretrain folder)
"""

from __future__ import annotations

import json
import resource
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from peft import LoraConfig
from safetensors.torch import save_file

from assay.config import Spec
from assay.data.labels import labels
from assay.data.split import Split
from assay.errors import SpecError
from assay.modeling.encoder import (
    EncoderConfig,
    MaskedCellModel,
    RecordClassifier,
    holds_weights,
    load_classifier,
    load_encoder,
    load_shape,
    predict_proba,
)
from assay.modeling.finetune import finetune
from assay.modeling.pretrain import pretrain
from assay.modeling.privacy_plan import PrivacyPlan, is_private, plan
from assay.modeling.rows import fitting_rows, learning_rows, pretraining_rows, training_rows
from assay.modeling.tokenizer import MASK, RecordTokenizer
from assay.privacy.budget import History

TEACHER_SCORES = "teacher_test_scores.npy"  # the teacher's probabilities on the test split
AUGMENTATION = "augmentation.json"  # the synthetic rows' report, when the spec augments


@dataclass(frozen=True)
class PretrainOutcome:
    folder: str
    rows: int
    epoch_loss: list[float]
    seconds: float
    peak_rss_mb: float
    dp_history: History = field(default_factory=list)  # DP-SGD steps taken (private specs)


@dataclass(frozen=True)
class TeacherOutcome:
    folder: str
    test_scores: str
    history: dict[str, list[float]]
    trainable_params: int
    total_params: int
    best_epoch: int
    seconds: float
    peak_rss_mb: float
    dp_history: History = field(default_factory=list)
    federation: dict = field(default_factory=dict)  # sites, rounds, bytes (federated specs)
    augmentation: dict = field(default_factory=dict)  # synthetic rows (assay.data.augment)

    @property
    def trainable_fraction(self) -> float:
        return self.trainable_params / self.total_params


def privacy_plan(split: Split, spec: Spec, phase: str | None = None) -> PrivacyPlan | None:
    """The spec's privacy plan; None when training is not private, or when `phase` (one of
    PRIVATE_PHASES, when named) trains on public rows without noise."""
    if spec.privacy is None or (phase is not None and not is_private(spec, phase)):
        return None
    return plan(split, spec)


def pretrain_stage(split: Split, spec: Spec, folder: Path) -> PretrainOutcome:
    """Fit the tokenizer on the rows pretraining reads (every non-test row but the
    calibration rows, labelled or not: its bins and vocabulary need no label, so they come
    from all the rows there are, not from the labelled few), or under privacy on the fitting
    rows (assay.modeling.rows); pretrain on those rows (by DP-SGD when the spec is private,
    unless it pretrains on the public rows)."""
    train = training_rows(split, spec)
    corpus = pretraining_rows(split, spec, train)
    fitted_on = fitting_rows(split, spec) if spec.privacy is not None else corpus
    tokenizer = RecordTokenizer.fit(fitted_on, spec)
    tokenizer.save(folder / "tokenizer")
    config = EncoderConfig.from_spec(spec.model, tokenizer.vocab_size, tokenizer.length)
    if not spec.pretrain.enabled or spec.pretrain.epochs == 0:
        return PretrainOutcome(str(folder), 0, [], 0.0, peak_rss_mb())
    initial = _from_checkpoint(spec, config)
    private = privacy_plan(split, spec, "pretrain")
    sgd = private.sgd("pretrain", spec.model.seed) if private else None
    result = pretrain(
        tokenizer.encode(corpus),
        config,
        private.schedule(spec.pretrain) if private else spec.pretrain,
        mask_id=tokenizer.token_id(MASK),
        seed=spec.model.seed,
        initial=initial,
        private=sgd,
    )
    result.model.encoder.save_pretrained(folder)
    return PretrainOutcome(
        str(folder),
        len(corpus),
        result.epoch_loss,
        result.seconds,
        peak_rss_mb(),
        sgd.history() if sgd else [],
    )


def finetune_stage(split: Split, spec: Spec, pretrained: Path, folder: Path) -> TeacherOutcome:
    """Fine-tune on train rows (by DP-SGD when the spec is private), stop on valid rows,
    score the test rows once."""
    tokenizer = RecordTokenizer.load(pretrained / "tokenizer")
    config = EncoderConfig.from_spec(spec.model, tokenizer.vocab_size, tokenizer.length)
    encoder_state = load_encoder(pretrained).state_dict() if holds_weights(pretrained) else None
    augmented = learning_rows(split, spec)
    train = augmented.rows
    if augmented.report:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / AUGMENTATION).write_text(json.dumps(augmented.report, indent=2))
    private = privacy_plan(split, spec, "finetune")
    sgd = private.sgd("finetune", spec.model.seed) if private else None
    result = finetune(
        tokenizer.encode(train),
        labels(train, spec),
        tokenizer.encode(split.valid),
        labels(split.valid, spec),
        config,
        private.schedule(spec.finetune) if private else spec.finetune,
        seed=spec.model.seed,
        encoder_state=encoder_state,
        private=sgd,
        balance=labels(fitting_rows(split, spec), spec),
    )
    scores = save_teacher(Teacher(tokenizer, result.model), split, result.history, folder)
    if result.adapter_state is not None:
        save_adapter(result.adapter_state, result.adapter_config, pretrained, folder / "adapter")
    return TeacherOutcome(
        folder=str(folder),
        test_scores=str(scores),
        history=result.history,
        trainable_params=result.trainable_params,
        total_params=result.total_params,
        best_epoch=result.best_epoch,
        seconds=result.seconds,
        peak_rss_mb=peak_rss_mb(),
        dp_history=sgd.history() if sgd else [],
        augmentation=augmented.report,
    )


def save_adapter(
    state: dict[str, torch.Tensor], config: LoraConfig, pretrained: Path, folder: Path
) -> None:
    """The adapter as `PeftModel.from_pretrained` reads it, naming the encoder it was trained
    on (the pretrain folder; none when pretraining was off and the encoder started random)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "adapter_model.safetensors"))
    encoder = pretrained.resolve() if holds_weights(pretrained) else None
    config.base_model_name_or_path = str(encoder) if encoder else None
    config.save_pretrained(str(folder))


def save_teacher(teacher: Teacher, split: Split, history: dict, folder: Path) -> Path:
    """The teacher folder's tokenizer, network and history; returns its test scores' file,
    scored once here."""
    teacher.tokenizer.save(folder / "tokenizer")
    teacher.model.save_pretrained(folder)
    scores = folder / TEACHER_SCORES
    np.save(scores, teacher.predict_proba(split.test), allow_pickle=False)
    (folder / "history.json").write_text(json.dumps(history))
    return scores


@dataclass
class Teacher:
    """A fine-tuned teacher ready to score frames."""

    tokenizer: RecordTokenizer
    model: RecordClassifier

    @classmethod
    def load(cls, folder: Path) -> Teacher:
        return cls(RecordTokenizer.load(folder / "tokenizer"), load_classifier(folder))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return predict_proba(self.model, self.tokenizer.encode(frame)).numpy()


def _from_checkpoint(spec: Spec, config: EncoderConfig) -> MaskedCellModel | None:
    """Start pretraining from spec.model.checkpoint (an encoder folder saved by assay)."""
    folder = spec.model.checkpoint
    if folder is None:
        return None
    if not holds_weights(folder):
        raise SpecError(f"model.checkpoint: {folder} holds no saved encoder (model.safetensors)")
    saved = load_shape(folder)
    if saved != config:
        raise SpecError(
            f"model.checkpoint: {folder} was trained with {saved}, this spec needs {config}"
        )
    model = MaskedCellModel(config)
    model.encoder.load_state_dict(load_encoder(folder).state_dict())
    return model


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
