"""Where a result came from: code digest, git commit and package versions, for cache keys and
for the MLflow run (a registered model must say exactly what produced it)."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from importlib import metadata
from pathlib import Path

import assay

_PACKAGES = (
    "assay", "prefect", "mlflow", "great-expectations", "scikit-learn", "pandas", "numpy",
    "torch", "transformers", "peft", "onnxruntime", "fairlearn",
)  # fmt: skip


@functools.cache
def code_digest() -> str:
    """Hash of the library's source: a cached result is reused only by the code that made it."""
    root = Path(assay.__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def git_commit() -> str:
    """The checkout's commit, or 'unknown' outside a git work tree."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(assay.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
