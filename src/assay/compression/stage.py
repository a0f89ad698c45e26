"""The compression stage: distill the teacher into the student, prune the student, export both
to ONNX, quantize the student to int8, measure it on the test split and put it through the gate.

The stage folder is the deployable package the predictor reads:
  spec.json, tokenizer/, model.int8.onnx (what ships), model.fp32.onnx, teacher.fp32.onnx,
  student.safetensors + encoder_config.json (the pruned student, for further training),
  unpruned/ (the student before pruning), pruning.json, student_test_scores.npy, gate.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from assay.compression.distill import UNLABELLED, DistillResult, Targets, distill, logits
from assay.compression.export import export_onnx, max_logit_difference
from assay.compression.gate import compression_gate
from assay.compression.prune import PruningReport, prune_and_recover
from assay.compression.quantize import quantize
from assay.compression.timing import latency_ms, onnx_runner
from assay.config import Spec
from assay.data.labels import labels
from assay.data.split import Split
from assay.gates import GateReport
from assay.modeling.encoder import EncoderConfig, RecordClassifier, predict_proba, save_module
from assay.modeling.loop import seed_everything
from assay.modeling.rows import (
    distillation_parts,
    fits_on_validation,
    fitting_rows,
)
from assay.modeling.teacher import TEACHER_SCORES, Teacher, privacy_plan
from assay.modeling.tokenizer import Encoded
from assay.privacy.budget import History
from assay.responsible.mitigation import reweighing
from assay.serving.layout import MODEL_FILE, SPEC_FILE, TOKENIZER_DIR
from assay.serving.scorer import OnnxScorer
from assay.serving.session import session

UNPRUNED = "unpruned"  # subfolder: the distilled student before pruning (evidence, benchmark)


@dataclass(frozen=True)
class CompressionOutcome:
    folder: str
    test_scores: str  # int8 student, positive-class probabilities on the test split
    student_params: int  # what ships (after pruning)
    best_epoch: int
    history: dict[str, list[float]]
    seconds: float  # distillation plus pruning and recovery
    sizes: dict[str, int]
    measurements: dict[str, float]
    gate: dict
    pruning: dict | None  # PruningReport.to_dict(), None when pruning is off
    dp_history: History = field(default_factory=list)  # DP-SGD steps taken (private specs)

    @property
    def passed(self) -> bool:
        return bool(self.gate["passed"])


def student_config(teacher: EncoderConfig, spec: Spec) -> EncoderConfig:
    """The teacher's vocabulary and length with the student's (smaller) shape."""
    shape = spec.compression.student.model_dump()
    return replace(teacher, **shape)


@dataclass
class _Student:
    model: RecordClassifier
    config: EncoderConfig
    distilled: DistillResult
    pruning: PruningReport | None
    unpruned_test_auc: float
    dp_history: History

    @property
    def seconds(self) -> float:
        return self.distilled.seconds + (self.pruning.seconds if self.pruning else 0.0)


def _targets(
    frame: pd.DataFrame,
    hard: np.ndarray,
    teacher: Teacher,
    spec: Spec,
    weights: np.ndarray | None = None,
) -> Targets:
    """What the student learns from on `frame`: the teacher's logits and the true labels."""
    encoded = teacher.tokenizer.encode(frame)
    return Targets.of(encoded, logits(teacher.model, encoded), hard, spec.compression, weights)


def _distill_and_prune(
    split: Split, spec: Spec, teacher: Teacher, test: Encoded, y_test: np.ndarray, folder: Path
) -> _Student:
    """Distil on labelled train rows plus every unlabelled row with the teacher's soft labels;
    then (when enabled) prune heads and feed-forward units and recover by distilling again.
    A private spec distils and recovers by DP-SGD, or without noise on the public validation
    rows and synthetic rows between them (`privacy.distil_on: public`), and scores the pruning
    on the validation rows when they are public (assay.privacy.report lists what is not
    covered otherwise)."""
    settings, seed, tokenizer = spec.compression, spec.model.seed, teacher.tokenizer
    labelled, unlabelled = distillation_parts(split, spec)
    hard = np.concatenate([labels(labelled, spec), np.full(len(unlabelled), UNLABELLED)])
    weights = None
    if settings.reweigh_on is not None:
        by_group = reweighing(labels(labelled, spec), labelled[settings.reweigh_on])
        weights = np.concatenate([by_group, np.ones(len(unlabelled))])
    pool = pd.concat([labelled, unlabelled], ignore_index=True)  # distillation_rows, drawn once
    targets = _targets(pool, hard, teacher, spec, weights)
    valid, y_valid = tokenizer.encode(split.valid), labels(split.valid, spec)
    config = student_config(teacher.model.encoder.config, spec)
    private = privacy_plan(split, spec, "compress")
    sgd = private.sgd("compress", seed) if private else None
    schedule = private.schedule(settings) if private else settings
    seed_everything(seed)
    distilled = distill(
        targets, valid, y_valid, RecordClassifier(config), schedule, seed=seed, private=sgd
    )
    student, spent = distilled.model, sgd.history() if sgd else []
    unpruned_auc = float(roc_auc_score(y_test, predict_proba(student, test).numpy()))
    if not settings.pruning.enabled:
        return _Student(student, config, distilled, None, unpruned_auc, spent)
    save_module(student, config, folder / UNPRUNED, "student")
    recovery = private.schedule(settings.recovery()) if private else settings.recovery()
    recovering = private.sgd("compress.recover", seed) if private else None
    scoring = targets
    if fits_on_validation(spec):
        scoring = _targets(split.valid, y_valid, teacher, spec)
    config, report = prune_and_recover(
        student,
        config,
        scoring,
        valid,
        y_valid,
        settings.pruning,
        lambda model: distill(
            targets, valid, y_valid, model, recovery, seed=seed, desc="recover",
            private=recovering,
        ),
        seed=seed,
    )  # fmt: skip
    if recovering:
        spent = spent + recovering.history()
    return _Student(student, config, distilled, report, unpruned_auc, spent)


def compress_stage(
    split: Split, spec: Spec, teacher_folder: Path, folder: Path
) -> CompressionOutcome:
    """Distill (and prune), export, quantize, measure, gate; everything lands in `folder`."""
    teacher = Teacher.load(teacher_folder)
    tokenizer = teacher.tokenizer
    settings = spec.compression
    test, y_test = tokenizer.encode(split.test), labels(split.test, spec)
    made = _distill_and_prune(split, spec, teacher, test, y_test, folder)
    student, config = made.model, made.config

    # Export both to ONNX, prove the student's export, quantize the student
    teacher_onnx = export_onnx(teacher.model, test, folder / "teacher.fp32.onnx")
    fp32 = export_onnx(student, test, folder / "model.fp32.onnx")
    parity = max_logit_difference(student, fp32, test)
    calibration = None
    if settings.quantization == "static":
        calibration = tokenizer.encode(fitting_rows(split, spec).head(settings.calibration_rows))
    int8 = quantize(
        fp32, folder / MODEL_FILE, method=settings.quantization, calibration=calibration
    )
    save_module(student, config, folder, "student")
    tokenizer.save(folder / TOKENIZER_DIR)
    (folder / SPEC_FILE).write_text(spec.model_dump_json(indent=2))

    # Measure on the test split and gate
    p_fp32 = OnnxScorer(tokenizer, session(fp32, 0)).predict_proba(split.test)
    p_int8 = OnnxScorer(tokenizer, session(int8, 0)).predict_proba(split.test)
    scores = folder / "student_test_scores.npy"
    np.save(scores, p_int8, allow_pickle=False)
    p50, p95 = latency_ms(onnx_runner(session(int8, 1)), test)
    measurements = {
        # The fine-tune stage already scored the test split; its scores are the reference.
        "teacher_auc": float(
            roc_auc_score(y_test, np.load(teacher_folder / TEACHER_SCORES, allow_pickle=False))
        ),
        "unpruned_fp32_auc": made.unpruned_test_auc,
        "fp32_auc": float(roc_auc_score(y_test, p_fp32)),
        "int8_auc": float(roc_auc_score(y_test, p_int8)),
        "agreement": float(np.mean((p_fp32 >= 0.5) == (p_int8 >= 0.5))),
        "parity": parity,
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
    }
    sizes = {p.name: p.stat().st_size for p in (teacher_onnx, fp32, int8)}
    gate: GateReport = compression_gate(
        settings.gate,
        agreement=measurements["agreement"],
        int8_auc=measurements["int8_auc"],
        teacher_auc=measurements["teacher_auc"],
        int8_bytes=sizes[int8.name],
        teacher_bytes=sizes[teacher_onnx.name],
        latency_ms=p50,
        parity=parity,
    )
    (folder / "gate.json").write_text(json.dumps(gate.to_dict(), indent=2))
    if made.pruning:
        (folder / "pruning.json").write_text(json.dumps(made.pruning.to_dict(), indent=2))
    return CompressionOutcome(
        folder=str(folder),
        test_scores=str(scores),
        student_params=sum(p.numel() for p in student.parameters()),
        best_epoch=made.distilled.best_epoch,
        history=made.distilled.history,
        seconds=made.seconds,
        sizes=sizes,
        measurements=measurements,
        gate=gate.to_dict(),
        pruning=made.pruning.to_dict() if made.pruning else None,
        dp_history=made.dp_history,
    )
