"""The names of a deployable package's files, in one place, and the check that a folder holds
the ones scoring needs.

  model.int8.onnx         the shipped model (also what an edge device runs on its own)
  tokenizer/              the record tokenizer (`tokenizers` JSON)
  spec.json               the resolved spec: how rows are read, which label value is positive
  decision.json           the decision policy (assay.serving.policy)
  reference-profile.json  the training rows' profile that drift is measured against
  responsible.json        every figure of the responsible stage
  manifest.json           SHA-256 of every file (assay.serving.manifest)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from assay.errors import AssayError

MODEL_FILE = "model.int8.onnx"
TOKENIZER_DIR = "tokenizer"
SPEC_FILE = "spec.json"
POLICY_FILE = "decision.json"
PROFILE_FILE = "reference-profile.json"
REPORT_FILE = "responsible.json"
SCORES_FILE = "test_scores.npy"  # calibrated P(positive) of the shipped model on the test split
MANIFEST_FILE = "manifest.json"


class ModelFolderError(AssayError):
    """The model to score with is not a complete deployable model folder."""


def copy_model_files(source: Path, folder: Path) -> None:
    """The model, tokenizer and spec of a compressed candidate into a package folder."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / MODEL_FILE, folder / MODEL_FILE)
    shutil.copy2(source / SPEC_FILE, folder / SPEC_FILE)
    shutil.copytree(source / TOKENIZER_DIR, folder / TOKENIZER_DIR, dirs_exist_ok=True)


def check_model_folder(folder: Path) -> None:
    """Refuse, naming what is wrong, a folder that cannot be scored with."""
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise ModelFolderError(
            f"model {folder} {problem}: pass a model folder (with {SPEC_FILE}, {TOKENIZER_DIR}/ "
            f"and {MODEL_FILE}), or champion, challenger or a registered version number"
        )
    expected = {
        SPEC_FILE: (folder / SPEC_FILE).is_file(),
        f"{TOKENIZER_DIR}/": (folder / TOKENIZER_DIR).is_dir(),
        MODEL_FILE: (folder / MODEL_FILE).is_file(),
    }
    missing = [name for name, present in expected.items() if not present]
    if missing:
        raise ModelFolderError(f"model folder {folder} lacks {', '.join(missing)}")
