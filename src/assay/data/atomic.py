"""Write-then-rename helpers: a reader sees a whole file or none, even after a SIGKILL."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TEMP_PREFIX = ".tmp-"


def write_atomic(target: Path, write: Callable[[Path], Any]) -> Path:
    """Call write(temp_path) beside target, fsync, then rename over target in one step."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
    os.close(fd)
    temp = Path(name)
    try:
        write(temp)
        with temp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(temp, target)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        # Still an OSError, so the shell retries it (space may be freed); the partial temp goes
        raise OSError(errno.ENOSPC, f"disk full: no space left to write {target}") from exc
    finally:
        temp.unlink(missing_ok=True)
    return target


def write_json_atomic(target: Path, payload: Any) -> Path:
    text = json.dumps(payload, indent=2, sort_keys=True, default=str)
    return write_atomic(target, lambda p: p.write_text(text + "\n", encoding="utf-8"))


def copy_atomic(source: Path, target: Path) -> Path:
    """Copy bytes and timestamps; the original is only read."""
    return write_atomic(target, lambda p: shutil.copy2(source, p))


def remove_stale_temps(folder: Path, min_age_s: float = 3600.0) -> int:
    """Delete temp files and folders a killed process left behind; committed names are kept.
    Young temps may belong to a writer that is still running, so they are left alone."""
    if not folder.is_dir():
        return 0
    cutoff = time.time() - min_age_s
    stale = [p for p in folder.glob(f"{TEMP_PREFIX}*") if p.lstat().st_mtime < cutoff]
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return len(stale)


def append_json_line(path: Path, payload: dict[str, Any]) -> None:
    """Append one JSON line durably: a single O_APPEND write, fsync'd, so a crash leaves the
    whole line or none of it. A torn last line (a crash mid-write on a filesystem that allows
    it) is ended first, never repaired in place; read_json_lines skips it."""
    line = (json.dumps(payload, sort_keys=True) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    if _torn(path):
        line = b"\n" + line
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _torn(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb") as stream:
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) != b"\n"


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON object line, oldest first (torn or foreign lines are skipped)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(raw, dict):
            out.append(raw)
    return out
