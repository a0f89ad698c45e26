"""Package digests: the package that loads is the package that was registered.

A manifest (`manifest.json`, in the package) lists the SHA-256 of every file of a deployable
package; the SHA-256 of the manifest's bytes is the package digest, kept on the model version
as the tag `assay.package_sha256` and in the pyfunc model's config. The registry is the trust
anchor: a package whose manifest does not hash to that tag, that lacks a listed file, holds an
unlisted one, or holds a file that does not hash to its entry is refused before any of its files
is read. A plain folder that carries a manifest is checked against the manifest alone: that
catches corruption and edits, though not whoever rewrites the manifest as well.

Loading never unpickles in any case (ONNX, `tokenizers` JSON and plain JSON only); the digest
makes sure those files are the ones the gates passed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

from assay.data.fingerprint import file_digest
from assay.errors import AssayError
from assay.serving.layout import MANIFEST_FILE


class TamperedPackage(AssayError):
    """A package's files are not the ones its digest or manifest names: nothing is loaded."""


def package_files(folder: Path) -> dict[str, Path]:
    """Every file under `folder` (bar the manifest) by its relative POSIX path."""
    files = (p for p in sorted(folder.rglob("*")) if p.is_file())
    return {p.relative_to(folder).as_posix(): p for p in files if p.name != MANIFEST_FILE}


def write_manifest(files: Mapping[str, Path], path: Path) -> str:
    """Write the manifest of `files` (relative path -> file) to `path`; return its digest."""
    entries = {name: file_digest(files[name]) for name in sorted(files)}
    text = json.dumps({"algorithm": "sha256", "files": entries}, indent=2, sort_keys=True)
    path.write_text(text + "\n", encoding="utf-8")
    return file_digest(path)


def has_manifest(folder: Path) -> bool:
    return (folder / MANIFEST_FILE).is_file()


def verify_package(folder: Path, expected: str | None, what: str) -> None:
    """Refuse `folder` unless its manifest hashes to `expected` (None: a plain folder, checked
    against its own manifest) and its files are exactly the ones listed, byte for byte."""
    against = "the registered digest" if expected else "its manifest"
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        _refuse(what, f"{MANIFEST_FILE} is missing, so it cannot be checked against {against}")
    if expected and file_digest(manifest) != expected:
        _refuse(what, f"{MANIFEST_FILE} does not match {against} (tampered or corrupted)")
    listed = _entries(manifest, what)
    present = package_files(folder)
    if missing := sorted(listed.keys() - present.keys()):
        _refuse(what, f"{_names(missing)} listed in {MANIFEST_FILE} is missing")
    if planted := sorted(present.keys() - listed.keys()):
        _refuse(what, f"{_names(planted)} is not part of the package it was registered as")
    changed = [name for name, path in present.items() if file_digest(path) != listed[name]]
    if changed:
        _refuse(what, f"{_names(changed)} does not match {against} (tampered or corrupted)")


def _entries(manifest: Path, what: str) -> dict[str, str]:
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        files = None
    if not isinstance(files, dict):
        _refuse(what, f"{MANIFEST_FILE} is not a valid manifest")
    return files


def _names(names: list[str]) -> str:
    more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
    return names[0] + more


def _refuse(what: str, problem: str) -> NoReturn:
    raise TamperedPackage(f"{what}: {problem}; refusing to load")
