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
