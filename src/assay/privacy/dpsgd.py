"""DP-SGD steps with Opacus, for the project's own training loops. Rows are drawn by Poisson
sampling (each row joins a batch with probability batch/rows: what the accountant assumes; a
seeded shuffle would not be), every row's gradient is clipped to `max_grad_norm` and Gaussian
noise is added before the optimizer steps. Each stage has its own PrivacyEngine, so a cached
stage keeps the history its accountant recorded; assay.privacy.report composes them.

An empty Poisson batch still takes a (noise-only) step: skipping it would make the number of
steps depend on the data, which the accountant does not model."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from opacus import GradSampleModule, PrivacyEngine
from opacus.optimizers import DPOptimizer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from assay.privacy.budget import History

# torch's notice, repeated each epoch, that a hooked module's inputs (frozen embeddings,
# token ids) need no gradient, so its full backward hook fires with the output gradients. Those
# are what Opacus's per-row gradients are computed from: nothing is wrong, and the notice
# drowned a private run's progress output.
_OUTPUT_HOOK_NOTICE = (
    "Full backward hook is firing when gradients are computed with respect to module outputs"
)


@dataclass(frozen=True)
class PrivateSGD:
    """How one stage trains privately: the stage's engine (its accountant records the steps
    taken), the noise multiplier planned for the whole budget (assay.privacy.budget), the
    per-row clipping bound and the seed of the stage's sampling and noise."""

    engine: PrivacyEngine
    noise: float
    max_grad_norm: float
    seed: int

    def history(self) -> History:
        """What the stage spent: (noise multiplier, sample rate, steps) per run of steps."""
        return [tuple(entry) for entry in self.engine.accountant.history]


@dataclass
class PrivateTraining:
    """A model, its optimizer and its row sampler made private by `engine`."""

    engine: PrivacyEngine
    module: GradSampleModule
    optimizer: DPOptimizer
    loader: DataLoader

    def batches(self) -> Iterator[np.ndarray]:
        """One epoch of Poisson batches of row indices (some may be empty)."""
        for (index,) in self.loader:
            yield index.numpy()

    def step(self, batch_loss: Callable[[np.ndarray], torch.Tensor], index: np.ndarray) -> float:
        """One DP-SGD step on rows `index`; the batch's mean loss (nan for an empty batch).
        `batch_loss` must be a mean over rows, so each row's gradient is its own."""
        self.optimizer.zero_grad(set_to_none=True)
        if len(index):
            loss = batch_loss(index)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", _OUTPUT_HOOK_NOTICE, UserWarning)
                loss.backward()
            value = loss.item()
        else:
            for p in self.optimizer.params:
                p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype)
            value = float("nan")
        self.optimizer.step()
        return value

    def unwrap(self) -> nn.Module:
        """The trained model without Opacus's hooks (peft calls go to it)."""
        self.module.remove_hooks()
        return self.module._module


def make_private(
    sgd: PrivateSGD,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    rows: int,
    batch_size: int,
) -> PrivateTraining:
    """Wrap `model` and `optimizer` (over the trainable parameters only) for DP-SGD over `rows`
    rows, expected batch `batch_size`; sampling and noise each have their own seeded
    generator, so the same seed gives the same model. The model's own forward records the
    per-row gradients too: the hooks sit on its layers."""
    indices = DataLoader(
        TensorDataset(torch.arange(rows)),
        batch_size=batch_size,
        generator=torch.Generator().manual_seed(sgd.seed),
    )
    module, optimizer, loader = sgd.engine.make_private(
        module=model,
        optimizer=optimizer,
        data_loader=indices,
        noise_multiplier=sgd.noise,
        max_grad_norm=sgd.max_grad_norm,
        noise_generator=torch.Generator().manual_seed(sgd.seed + 1),
    )
    return PrivateTraining(sgd.engine, module, optimizer, loader)
