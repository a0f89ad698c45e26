"""The exchange: the one place coordinator and sites both read and write. It holds what the
protocol lets cross (the setup the sites start from, each round's global adapter, each site's
update and report, each site's census); never a row. A local folder here; in production an
object store both sides can reach."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


@dataclass(frozen=True)
class Census:
    """What a site says about its data before any round: enough to weight, key and balance."""

    site: str
    fingerprint: str  # of the site's snapshot: a new batch at a site changes the run's keys
    rows: int  # training rows
    positives: int  # positive labels among them (the global class balance)
    valid_rows: int


@dataclass(frozen=True)
class SiteReport:
    """One site's answer to a round: the global adapter's ROC AUC on its validation rows as
    received, and (training rounds) how its local training went."""

    site: str
    round: int
    rows: int
    valid_rows: int
    valid_auc: float
    train_loss: float | None
    seconds: float
    update_bytes: int


@dataclass(frozen=True)
class Exchange:
    root: Path

    @property
    def setup(self) -> Path:
        """Tokenizer, encoder config, the adapter's starting weights, the training settings."""
        return self.root / "setup"

    def census(self, site: str) -> Path:
        return self.root / "census" / f"{site}.json"

    def global_state(self, round_: int) -> Path:
        return self._round(round_) / "global.safetensors"

    def update(self, round_: int, site: str) -> Path:
        return self._round(round_) / f"{site}.safetensors"

    def report(self, round_: int, site: str) -> Path:
        return self._round(round_) / f"{site}.json"

    def clear_rounds(self) -> None:
        """A new federation starts with no round of an earlier one left to be read."""
        for folder in self.root.glob("round-*"):
            shutil.rmtree(folder)

    def _round(self, round_: int) -> Path:
        return self.root / f"round-{round_:03d}"


def write_json(path: Path, value: Any) -> None:
    """Whole or not at all: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_text(
        json.dumps(asdict(value) if hasattr(value, "__dataclass_fields__") else value)
    )
    os.replace(partial, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def write_tensors(path: Path, state: dict[str, torch.Tensor]) -> int:
    """Save the tensors whole (renamed in); returns the bytes written, which is what crossed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    save_file({k: v.contiguous() for k, v in state.items()}, str(partial))
    os.replace(partial, path)
    return path.stat().st_size


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))
