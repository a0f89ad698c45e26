"""Where assay keeps its state: one folder (ASSAY_HOME, default ./.assay) holds everything."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Home:
    """The layout of ASSAY_HOME; production points the same layout at other storage."""

    root: Path

    @classmethod
    def from_env(cls, override: str | Path | None = None) -> Home:
        return cls(Path(override or os.environ.get("ASSAY_HOME", ".assay")).resolve())

    @property
    def batches(self) -> Path:
        return self.root / "store" / "batches"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def audit(self) -> Path:
        """The append-only audit log (promotions, rollbacks, quarantines, gate failures)."""
        return self.root / "store" / "audit.jsonl"

    @property
    def last_training(self) -> Path:
        """Which batches the latest train run used: what 'new since training' is measured from."""
        return self.root / "store" / "last-training.json"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def run_dir(self, fingerprint: str) -> Path:
        """Everything derived from one snapshot: model files, scores, metrics, resolved config."""
        return self.root / "runs" / fingerprint[:16]

    @property
    def prefect(self) -> Path:
        return self.root / "prefect"

    def stage_dir(self, stage: str, key: str) -> Path:
        """Output of one cached stage (pretrain, finetune), named by the stage's own key."""
        return self.root / "stages" / stage / key[:16]

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"
