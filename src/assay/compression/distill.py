"""Distillation: a small student learns the teacher's temperature-softened outputs, mixed with
the true labels where rows have them. Unlabelled rows count too (soft labels only): they are
what makes distillation cheap to feed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from assay.config import CompressionSpec
from assay.modeling.encoder import RecordClassifier, tensors
from assay.modeling.loop import Schedule, seed_everything, train_with_early_stopping
from assay.modeling.tokenizer import Encoded
from assay.privacy.dpsgd import PrivateSGD

UNLABELLED = -1  # label value for pool rows without a true label


@dataclass
class DistillResult:
    model: RecordClassifier
    params: int
    best_epoch: int
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    soft_weight: float,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """soft_weight * T² * KL(teacher_T || student_T) + (1 - soft_weight) * CE on labelled rows.
    T² keeps the soft term's gradient scale independent of the temperature (Hinton et al.).
    With `weights` (one per row, e.g. fairness reweighing) both terms are weighted means."""
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    labelled = labels != UNLABELLED
    if weights is None:
        soft = F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean")
        hard = (
            F.cross_entropy(student_logits[labelled], labels[labelled])
            if labelled.any()
            else student_logits.sum() * 0
        )
    else:
        per_row = F.kl_div(log_student, log_teacher, log_target=True, reduction="none").sum(-1)
        soft = (per_row * weights).sum() / weights.sum()
        ce = F.cross_entropy(student_logits[labelled], labels[labelled], reduction="none")
        kept = weights[labelled]
        hard = (ce * kept).sum() / kept.sum() if labelled.any() else student_logits.sum() * 0
    return soft_weight * (soft * (temperature**2)) + (1 - soft_weight) * hard


@dataclass(frozen=True)
class Targets:
    """What the student learns from: pool rows, the teacher's logits on them, the true labels
    (UNLABELLED where there are none) and how the two are mixed."""

    pool: Encoded
    teacher_logits: torch.Tensor
    labels: torch.Tensor
    temperature: float
    soft_weight: float
    weights: torch.Tensor | None = None  # per pool row; None: every row counts the same

    @classmethod
    def of(
        cls,
        pool: Encoded,
        teacher_logits: np.ndarray,
        labels: np.ndarray,
        spec: CompressionSpec,
        weights: np.ndarray | None = None,
    ) -> Targets:
        return cls(
            pool,
            torch.from_numpy(teacher_logits.astype(np.float32)),
            torch.from_numpy(labels.astype(np.int64)),
            spec.temperature,
            spec.soft_weight,
            None if weights is None else torch.from_numpy(weights.astype(np.float32)),
        )

    def loss(self, student: RecordClassifier, index: np.ndarray) -> torch.Tensor:
        """The distillation loss of `student` on the pool rows at `index`."""
        return distillation_loss(
            student(*tensors(self.pool.take(index))),
            self.teacher_logits[index],
            self.labels[index],
            self.temperature,
            self.soft_weight,
            None if self.weights is None else self.weights[index],
        )


def distill(
    targets: Targets,
    valid: Encoded,
    y_valid: np.ndarray,
    student: RecordClassifier,
    schedule: Schedule,
    *,
    seed: int,
    desc: str = "distill (student)",
    private: PrivateSGD | None = None,
) -> DistillResult:
    """Train `student` (in place) on the targets; early-stop on valid ROC AUC. With `private`,
    by DP-SGD over the pool's rows."""
    rng = seed_everything(seed)
    trainable = list(student.parameters())
    started = time.perf_counter()
    best_epoch, history = train_with_early_stopping(
        student,
        trainable,
        lambda index: targets.loss(student, index),
        len(targets.pool),
        valid,
        y_valid,
        schedule,
        rng,
        desc + (" (DP-SGD)" if private else ""),
        private,
    )
    student.eval()
    return DistillResult(
        model=student,
        params=sum(p.numel() for p in trainable),
        best_epoch=best_epoch,
        history=history,
        seconds=time.perf_counter() - started,
    )


@torch.no_grad()
def logits(model: RecordClassifier, data: Encoded, batch_size: int = 4096) -> np.ndarray:
    """Raw two-class logits, in row order (the teacher's soft targets)."""
    model.eval()
    out = [
        model(*tensors(data.take(slice(i, i + batch_size))))
        for i in range(0, len(data), batch_size)
    ]
    return torch.cat(out).numpy()
