"""Where assay keeps its state: one folder (ASSAY_HOME, default ./.assay) holds everything.

One home holds many datasets. What belongs to a dataset (its batches, quarantine, reports,
stages, runs, audit log, last-training record and landing ledger) lives in its own namespace,
`datasets/<spec name>/`, and nothing of one dataset is read by another's flows. The folders other
programs write to or read from are per dataset too, at the top of the home: `landing/<name>/`,
`archive/<name>/`, `predictions/<name>/`, `traffic/<name>/`. The MLflow store, Prefect's state,
fetched registry packages (named by registered model) and the server logs are shared.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from assay.errors import AssayError

# Folders that held one dataset's state at the top of the home before namespaces
LEGACY_FOLDERS = ("store", "quarantine", "reports", "stages", "runs")


class HomeLayoutError(AssayError):
    """The home was written by an older layout that this version does not read."""


@dataclass(frozen=True)
class Home:
    """The layout of ASSAY_HOME; production points the same layout at other storage.

    `dataset` names the namespace the per-dataset paths are in; a Home without one knows only
    the shared paths (a programming error to ask it for a batch folder)."""

    root: Path
    dataset: str | None = None

    @classmethod
    def from_env(cls, override: str | Path | None = None) -> Home:
        return cls(Path(override or os.environ.get("ASSAY_HOME", ".assay")).resolve())

    def for_dataset(self, name: str) -> Home:
        """The same home, seen from one dataset's namespace. A home in the single-dataset
        layout of earlier versions is refused with what to do, never read as if it were empty."""
        if legacy_layout(self.root):
            raise HomeLayoutError(
                f"{self.root} uses the single-dataset layout of earlier assay versions "
                f"(store/batches/ at its top): run `assay migrate-home --spec SPEC` to move it "
                f"into datasets/<name>/, or point --home at a new folder"
            )
        return replace(self, dataset=name)

    @property
    def namespace(self) -> Path:
        if self.dataset is None:
            raise ValueError("this Home names no dataset: call for_dataset(spec.name) first")
        return self.root / "datasets" / self.dataset

    # Per dataset

    @property
    def batches(self) -> Path:
        return self.namespace / "store" / "batches"

    @property
    def quarantine(self) -> Path:
        return self.namespace / "quarantine"

    @property
    def audit(self) -> Path:
        """The append-only audit log (promotions, rollbacks, quarantines, gate failures, batch
        retirements)."""
        return self.namespace / "store" / "audit.jsonl"

    @property
    def last_training(self) -> Path:
        """Which batches the latest train run used: what 'new since training' is measured from."""
        return self.namespace / "store" / "last-training.json"

    @property
    def ledger(self) -> Path:
        """Files the landing watcher has announced, so a restart does not announce them again."""
        return self.namespace / "store" / "landing-ledger.json"

    @property
    def reports(self) -> Path:
        return self.namespace / "reports"

    @property
    def landing(self) -> Path:
        """Where files for this dataset are dropped (landing/<dataset>/); the watcher announces
        each one to this dataset's ingest only."""
        return self.landing_root / self.namespace.name

    @property
    def archive(self) -> Path:
        """Accepted landing files, kept as they arrived (archive/<dataset>/)."""
        return self.root / "archive" / self.namespace.name

    @property
    def traffic(self) -> Path:
        """What served models saw: profiles of their traffic (traffic/<dataset>/)."""
        return self.root / "traffic" / self.namespace.name

    @property
    def predictions(self) -> Path:
        """Scheduled scoring's output, `<batch>-v<version>.parquet`: at the top of the home
        (predictions/<dataset>/), where downstream jobs pick it up."""
        return self.root / "predictions" / self.namespace.name

    def run_dir(self, fingerprint: str) -> Path:
        """Everything derived from one snapshot: model files, scores, metrics, resolved config."""
        return self.namespace / "runs" / fingerprint[:16]

    def stage_dir(self, stage: str, key: str) -> Path:
        """Output of one cached stage (pretrain, finetune), named by the stage's own key."""
        return self.namespace / "stages" / stage / key[:16]

    # Shared by every dataset

    @property
    def landing_root(self) -> Path:
        """The folder that holds every dataset's landing folder."""
        return self.root / "landing"

    @property
    def prefect(self) -> Path:
        return self.root / "prefect"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def packages(self) -> Path:
        """Registry packages fetched for scoring, by registered model name and version."""
        return self.root / "models"

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"


def legacy_layout(root: Path) -> bool:
    """Whether `root` holds batches in the single-dataset layout (store/batches/ at the top)."""
    return (root / "store" / "batches").is_dir()


def migrate(home: Home) -> list[str]:
    """Move a single-dataset home's folders into the namespace of `home.dataset` (the caller
    says which dataset they hold); returns what moved. Renames only: nothing is copied or lost.
    Cached stage results are keyed by the namespace, so the next run recomputes them; MLflow
    runs and model versions are found again by identity."""
    target = replace(home, dataset=None).root / "datasets" / str(home.dataset)
    moved = []
    for name in LEGACY_FOLDERS:
        source = home.root / name
        if not source.exists():
            continue
        if (target / name).exists():
            raise HomeLayoutError(f"{target / name} exists already: move it aside first")
        target.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target / name)
        moved.append(name)
    return moved
