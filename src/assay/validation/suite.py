"""Great Expectations suites as reviewed JSON files (GE 1.x serialization, severity included)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from assay.data.atomic import write_json_atomic
from assay.errors import SpecError

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

# Analytics must be off before the import (no network here, and no reason to phone home).
import great_expectations as gx


def load_suite(path: str | Path) -> gx.ExpectationSuite:
    """Read a suite file; a missing or malformed file is a SpecError naming it."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(
            f"{path}: expectation suite not found "
            "(write one with `assay expectations suggest DATA --spec SPEC`)"
        ) from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not valid JSON: {exc}") from None
    try:
        return gx.ExpectationSuite(
            name=raw["name"], expectations=raw.get("expectations", []), meta=raw.get("meta")
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"{path}: not a Great Expectations suite: {exc}") from None


def save_suite(suite: gx.ExpectationSuite, path: str | Path) -> Path:
    payload = suite.to_json_dict()
    payload.pop("id", None)
    return write_json_atomic(Path(path), payload)


def suite_digest(suite: gx.ExpectationSuite) -> str:
    """Hash of the suite's content, part of every cache key that depends on validation."""
    payload = suite.to_json_dict()
    payload.pop("id", None)
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
