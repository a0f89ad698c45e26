"""The compression stage: distill the teacher (with the reference family, as an ensemble) into
the student, prune the student, export both to ONNX, quantize the student to int8, measure it
on the test split and put it through the gate.

The stage folder is the deployable package the predictor reads:
  spec.json, tokenizer/, model.int8.onnx (what ships), model.fp32.onnx, teacher.fp32.onnx,
  config.json + model.safetensors (the student as a `transformers` model, pruned: for
  further training), unpruned/ (the student before pruning, the same two files),
  pruning.json, student_test_scores.npy, gate.json,
  ensemble.json (what the student learnt from) and ensemble_test_scores.npy
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from assay.compression.distill import UNLABELLED, DistillResult, Targets, distill, logits
from assay.compression.ensemble import EnsembleTeacher, Scorer, log_odds
from assay.compression.export import export_onnx, max_logit_difference
from assay.compression.gate import compression_gate
from assay.compression.prune import PruningReport, prune_and_recover
from assay.compression.quantize import quantize
from assay.compression.timing import latency_ms, onnx_runner
from assay.config import CompressionSpec, Spec
from assay.data.labels import labels
from assay.data.split import Split
from assay.gates import GateReport
from assay.modeling.encoder import EncoderConfig, RecordClassifier, predict_proba
from assay.modeling.loop import seed_everything
from assay.modeling.reference import load_members
from assay.modeling.rows import (
    distillation_parts,
    fits_on_validation,
    fitting_rows,
)
from assay.modeling.teacher import TEACHER_SCORES, Teacher, privacy_plan
from assay.modeling.tokenizer import Encoded, RecordTokenizer
from assay.privacy.budget import History
from assay.responsible.mitigation import reweighing
from assay.serving.layout import MODEL_FILE, SPEC_FILE, TOKENIZER_DIR
from assay.serving.scorer import OnnxScorer
from assay.serving.session import session

ENSEMBLE = "ensemble.json"  # the weights of what the student learnt from
STUDENT_SCORES = "student_test_scores.npy"  # the int8 student's test scores
UNPRUNED = "unpruned"  # subfolder: the distilled student before pruning (evidence, benchmark)


@dataclass(frozen=True)
class CompressionOutcome:
    folder: str
    test_scores: str  # int8 student, positive-class probabilities on the test split
    ensemble_test_scores: str  # what the student learnt from, on the test split
    ensemble: dict  # its weights, scale, shift and validation log loss (Ensemble.to_dict)
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
    distilled: DistillResult
    pruning: PruningReport | None
    unpruned_test_auc: float
    dp_history: History
    unpruned: RecordClassifier | None = None  # when pruned: the student before

    @property
    def seconds(self) -> float:
        return self.distilled.seconds + (self.pruning.seconds if self.pruning else 0.0)

    def unpruned_instead(self, why: str) -> _Student:
        """The student before pruning ships; the report keeps what pruning did and why not."""
        assert self.unpruned is not None and self.pruning is not None
        return replace(self, model=self.unpruned, pruning=self.pruning.refused(why))


def pruning_refused(report: PruningReport, agreement: float, settings: CompressionSpec) -> str:
    """Why the pruned student must not ship, judged on the validation rows ('' when it may):
    recovery left it more than `pruning.max_valid_drop` ROC AUC below the unpruned student, or
    its int8 model agrees with its fp32 model on fewer rows than the compression gate asks."""
    drop = report.valid_auc_before - report.valid_auc_recovered
    if drop > settings.pruning.max_valid_drop:
        return (
            f"validation ROC AUC {report.valid_auc_before:.4f} -> "
            f"{report.valid_auc_recovered:.4f} after recovery (at most "
            f"{settings.pruning.max_valid_drop:g} may be lost)"
        )
    if agreement < settings.gate.min_agreement:
        return (
            f"its int8 model agrees with fp32 on {agreement:.4f} of validation rows (the "
            f"compression gate asks {settings.gate.min_agreement:g})"
        )
    return ""


def _targets(
    frame: pd.DataFrame,
    hard: np.ndarray,
    source: EnsembleTeacher,
    tokenizer: RecordTokenizer,
    spec: Spec,
    weights: np.ndarray | None = None,
) -> Targets:
    """What the student learns from on `frame`: the source's logits and the true labels."""
    encoded = tokenizer.encode(frame)
    return Targets.of(encoded, source.logits(frame), hard, spec.compression, weights)


def teacher_log_odds(teacher: Teacher) -> Scorer:
    """The fine-tuned teacher as an ensemble member: its log-odds for a frame's rows."""

    def score(frame: pd.DataFrame) -> np.ndarray:
        z = logits(teacher.model, teacher.tokenizer.encode(frame)).astype(np.float64)
        return z[:, 1] - z[:, 0]

    return score


def distillation_source(
    split: Split, spec: Spec, teacher: Teacher, references: Path | None
) -> EnsembleTeacher:
    """The student's teacher: the fine-tuned teacher with the reference family's members,
    weighted on the validation rows (assay.compression.ensemble); the teacher alone when the
    spec asks for it, when there are no references, or under privacy (the references learn
    from private rows without noise, so the released student may not learn from them)."""
    member = teacher_log_odds(teacher)
    if spec.compression.teacher == "teacher" or references is None or spec.privacy is not None:
        return EnsembleTeacher.alone("teacher", member)
    members: dict[str, Scorer] = {"teacher": member}
    for name, model in load_members(references).items():
        members[name] = lambda frame, model=model: log_odds(model.predict_proba(frame))
    return EnsembleTeacher.fit(members, split.valid, labels(split.valid, spec))


def _distill_and_prune(
    split: Split,
    spec: Spec,
    teacher: Teacher,
    source: EnsembleTeacher,
    test: Encoded,
    y_test: np.ndarray,
    folder: Path,
) -> _Student:
    """Distil on labelled train rows plus every unlabelled and synthetic row with the
    source's soft labels; then (when enabled) prune heads and feed-forward units and recover
    by distilling again. A private spec distils and recovers by DP-SGD, or without noise on
    the public validation rows and synthetic rows between them (`privacy.distil_on: public`),
    and scores the pruning on the validation rows when they are public
    (assay.privacy.report lists what is not covered otherwise)."""
    settings, seed, tokenizer = spec.compression, spec.model.seed, teacher.tokenizer
    labelled, unlabelled = distillation_parts(split, spec)
    hard = np.concatenate([labels(labelled, spec), np.full(len(unlabelled), UNLABELLED)])
    weights = None
    if settings.reweigh_on is not None:
        by_group = reweighing(labels(labelled, spec), labelled[settings.reweigh_on])
        weights = np.concatenate([by_group, np.ones(len(unlabelled))])
    pool = pd.concat([labelled, unlabelled], ignore_index=True)  # distillation_rows, drawn once
    targets = _targets(pool, hard, source, tokenizer, spec, weights)
    valid, y_valid = tokenizer.encode(split.valid), labels(split.valid, spec)
    config = student_config(teacher.model.shape, spec)
    private = privacy_plan(split, spec, "compression")
    sgd = private.sgd("compression", seed) if private else None
    schedule = private.schedule(settings) if private else settings
    seed_everything(seed)
    distilled = distill(
        targets, valid, y_valid, RecordClassifier(config), schedule, seed=seed, private=sgd
    )
    student, spent = distilled.model, sgd.history() if sgd else []
    unpruned_auc = float(roc_auc_score(y_test, predict_proba(student, test).numpy()))
    if not settings.pruning.enabled:
        return _Student(student, distilled, None, unpruned_auc, spent)
    student.save_pretrained(folder / UNPRUNED)
    unpruned = copy.deepcopy(student)
    recovery = private.schedule(settings.recovery()) if private else settings.recovery()
    recovering = private.sgd("compression.pruning", seed) if private else None
    scoring = targets
    if fits_on_validation(spec):
        scoring = _targets(split.valid, y_valid, source, tokenizer, spec)
    report = prune_and_recover(
        student,
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
    return _Student(student, distilled, report, unpruned_auc, spent, unpruned)


def _export(
    student: RecordClassifier, test: Encoded, folder: Path, spec: Spec, calibration: Encoded | None
) -> tuple[Path, Path, float]:
    """The student as fp32 ONNX (parity-checked against torch on the test rows) and int8."""
    fp32 = export_onnx(student, test, folder / "model.fp32.onnx")
    parity = max_logit_difference(student, fp32, test)
    method = spec.compression.quantization
    int8 = quantize(fp32, folder / MODEL_FILE, method=method, calibration=calibration)
    return fp32, int8, parity


def agreement(tokenizer: RecordTokenizer, fp32: Path, int8: Path, frame: pd.DataFrame) -> float:
    """Share of `frame`'s rows the int8 and fp32 models decide alike at 0.5. One thread: the
    figure decides which student ships, so it must not depend on the cores of the machine."""
    p_fp32 = OnnxScorer(tokenizer, session(fp32, 1)).predict_proba(frame)
    p_int8 = OnnxScorer(tokenizer, session(int8, 1)).predict_proba(frame)
    return float(np.mean((p_fp32 >= 0.5) == (p_int8 >= 0.5)))


@dataclass(frozen=True)
class _Exported:
    """The ONNX files of one compression and the student export's parity (the largest logit
    difference between torch and ONNX fp32)."""

    teacher: Path
    fp32: Path
    int8: Path
    parity: float

    def sizes(self) -> dict[str, int]:
        return {p.name: p.stat().st_size for p in (self.teacher, self.fp32, self.int8)}


def compress_stage(
    split: Split, spec: Spec, teacher_folder: Path, folder: Path, references: Path | None = None
) -> CompressionOutcome:
    """Distill (and prune), export, quantize, measure, gate; everything lands in `folder`.
    `references`: the baseline stage's folder of reference-family members, which join the
    teacher in the ensemble the student learns from."""
    teacher = Teacher.load(teacher_folder)
    tokenizer = teacher.tokenizer
    test, y_test = tokenizer.encode(split.test), labels(split.test, spec)
    source = distillation_source(split, spec, teacher, references)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ENSEMBLE).write_text(json.dumps(source.ensemble.to_dict(), indent=2))
    ensemble_scores = folder / "ensemble_test_scores.npy"
    np.save(ensemble_scores, source.predict_proba(split.test), allow_pickle=False)
    made = _distill_and_prune(split, spec, teacher, source, test, y_test, folder)
    made, exported = _export_all(made, teacher, split, spec, (folder, test))
    student = made.model
    student.save_pretrained(folder)
    tokenizer.save(folder / TOKENIZER_DIR)
    (folder / SPEC_FILE).write_text(spec.model_dump_json(indent=2))
    measurements = _measure(exported, teacher_folder, split, spec, made, (tokenizer, test))
    sizes = exported.sizes()
    gate: GateReport = compression_gate(
        spec.compression.gate,
        agreement=measurements["agreement"],
        int8_auc=measurements["int8_auc"],
        teacher_auc=measurements["teacher_auc"],
        int8_bytes=sizes[exported.int8.name],
        teacher_bytes=sizes[exported.teacher.name],
        latency_ms=measurements["latency_p50_ms"],
        parity=exported.parity,
    )
    (folder / "gate.json").write_text(json.dumps(gate.to_dict(), indent=2))
    if made.pruning:
        (folder / "pruning.json").write_text(json.dumps(made.pruning.to_dict(), indent=2))
    return CompressionOutcome(
        folder=str(folder),
        test_scores=str(folder / STUDENT_SCORES),
        ensemble_test_scores=str(ensemble_scores),
        ensemble=source.ensemble.to_dict(),
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


def _export_all(
    made: _Student, teacher: Teacher, split: Split, spec: Spec, into: tuple[Path, Encoded]
) -> tuple[_Student, _Exported]:
    """Export both to ONNX, prove the student's export, quantize the student; a pruned student
    the validation rows find worse, or fragile under int8, gives way to the unpruned one.
    `into`: the stage's folder, and the test rows as encoded (the exports' sample input)."""
    (folder, test), settings, tokenizer = into, spec.compression, teacher.tokenizer
    teacher_onnx = export_onnx(teacher.model, test, folder / "teacher.fp32.onnx")
    calibration = None
    if settings.quantization == "static":
        calibration = tokenizer.encode(fitting_rows(split, spec).head(settings.calibration_rows))
    fp32, int8, parity = _export(made.model, test, folder, spec, calibration)
    if made.pruning is not None:
        valid_agreement = agreement(tokenizer, fp32, int8, split.valid)
        why = pruning_refused(made.pruning, valid_agreement, settings)
        if why:
            made = made.unpruned_instead(why)
            fp32, int8, parity = _export(made.model, test, folder, spec, calibration)
    return made, _Exported(teacher_onnx, fp32, int8, parity)


def _measure(
    exported: _Exported,
    teacher_folder: Path,
    split: Split,
    spec: Spec,
    made: _Student,
    encoded: tuple[RecordTokenizer, Encoded],
) -> dict[str, float]:
    """The shipped int8 student on the test split beside its fp32 export and the teacher (whose
    test scores the fine-tune stage saved); its scores are saved for evaluation. `encoded`: the
    tokenizer and the test rows it encoded (the latency's input)."""
    (tokenizer, test), y_test = encoded, labels(split.test, spec)
    p_fp32 = OnnxScorer(tokenizer, session(exported.fp32, 0)).predict_proba(split.test)
    p_int8 = OnnxScorer(tokenizer, session(exported.int8, 0)).predict_proba(split.test)
    np.save(exported.int8.parent / STUDENT_SCORES, p_int8, allow_pickle=False)
    p50, p95 = latency_ms(onnx_runner(session(exported.int8, 1)), test)
    teacher_scores = np.load(teacher_folder / TEACHER_SCORES, allow_pickle=False)
    return {
        "teacher_auc": float(roc_auc_score(y_test, teacher_scores)),
        "unpruned_fp32_auc": made.unpruned_test_auc,
        "fp32_auc": float(roc_auc_score(y_test, p_fp32)),
        "int8_auc": float(roc_auc_score(y_test, p_int8)),
        "agreement": float(np.mean((p_fp32 >= 0.5) == (p_int8 >= 0.5))),
        "parity": exported.parity,
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
    }
