"""Which datasets a command is about: the specs it was given, one by one or as a folder of them.

Two specs of one dataset (the same `name:`) are refused: they would share deployments, events,
landing folder and store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from assay.config import Spec, load_spec
from assay.errors import SpecError

SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Dataset:
    """A spec and the file it was read from (deployments run the file, by its absolute path)."""

    path: Path
    spec: Spec

    @property
    def name(self) -> str:
        return self.spec.name


def spec_files(folder: Path) -> list[Path]:
    """Every spec in `folder` (its *.yaml and *.yml files, not its subfolders), by name."""
    if not folder.is_dir():
        raise SpecError(f"--specs {folder}: not a folder")
    found = sorted(p for p in folder.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file())
    if not found:
        raise SpecError(f"--specs {folder}: no spec (*.yaml, *.yml) in it")
    return found


def load_datasets(paths: Sequence[Path], folder: Path | None = None) -> list[Dataset]:
    """The specs at `paths`, then those in `folder`, each loaded (a bad one is one clear
    error naming its file) and resolved to an absolute path."""
    files = [*paths, *(spec_files(folder) if folder else [])]
    datasets: dict[str, Dataset] = {}
    for path in files:
        resolved = path.resolve()
        spec = load_spec(resolved)
        other = datasets.get(spec.name)
        if other is not None and other.path != resolved:
            raise SpecError(
                f"{path} and {other.path} both describe dataset '{spec.name}': "
                f"each dataset needs its own name"
            )
        datasets[spec.name] = Dataset(resolved, spec)
    return list(datasets.values())
