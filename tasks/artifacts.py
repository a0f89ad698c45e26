"""Prefect artifact keys from user-chosen names (features, plots): Prefect accepts only
lowercase letters, digits and dashes, and a key names one artifact per flow run, so a key made
from a name is cleaned and, when two names clean to the same key, numbered."""

from __future__ import annotations

import re
from collections.abc import Iterable

_NOT_KEY = re.compile(r"[^a-z0-9]+")


def artifact_key(name: str) -> str:
    """`plot-groups-marital_status` -> `plot-groups-marital-status`."""
    return _NOT_KEY.sub("-", name.lower()).strip("-") or "artifact"


def artifact_keys(names: Iterable[str]) -> dict[str, str]:
    """A valid key per name, unique among them (`-2`, `-3`, ... after a repeat)."""
    keys: dict[str, str] = {}
    for name in names:
        key, n = artifact_key(name), 1
        while (key if n == 1 else f"{key}-{n}") in keys.values():
            n += 1
        keys[name] = key if n == 1 else f"{key}-{n}"
    return keys
