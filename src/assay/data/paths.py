"""Which paths ingest may open: the check that keeps a hostile event payload inside ASSAY_HOME.

The paths of an `assay.data.arrived` event are data, not trusted input: anyone who can post an
event to the Prefect API chooses them. So when ingest is confined (every deployment run), a
path must name a regular file in the landing folder itself: no `..`, nothing that resolves
elsewhere, no symbolic link (the watcher never reports one, and following it would read its
target), no hard link to a file with another name, no folder, FIFO, socket or device (opening
a FIFO blocks, a device reads forever). The check reads only directory entries, never a file's
bytes, and nothing outside the landing folder is looked at in confined mode.

Outside confined mode (a direct call: `assay ingest FILE`, `assay run`'s bundled files) the
caller chose the files, so a path anywhere is read; the landing folder keeps the same rules,
since other writers drop files there.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from assay.data.reader import one_line

Verdict = Literal["ok", "missing", "rejected"]
# Stored names add a stamp and a hash to the file's name (quarantine/, archive/, reports/), and
# a name must still fit the usual 255-byte limit.
MAX_NAME_BYTES = 200

_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


@dataclass(frozen=True)
class CheckedPath:
    """A path from the caller, where it really is, and whether ingest may open it."""

    given: str
    path: Path  # absolute, its folders resolved; the last part is not followed
    verdict: Verdict
    reason: str = ""
    in_landing: bool = False  # the entry itself is in the landing folder: assay's to move
    kind: str = "file"
    identity: tuple[int, int] | None = None  # (device, inode) of a file that passed

    @property
    def movable(self) -> bool:
        """A refused entry in the landing folder is moved to quarantine with rename, which
        moves the entry (a link stays a link) and never opens it. A folder stays put: it may
        be the operator's, and it holds more than one thing to judge."""
        return self.verdict == "rejected" and self.in_landing and self.kind != "a folder"


def check_path(given: str, landing: Path, *, confine: bool) -> CheckedPath:
    """Decide whether `given` may be opened; see the module docstring for the rules."""
    if not given or "\x00" in given:
        return _refuse(given, Path("."), "the path is empty or holds a NUL byte")
    raw = Path(given)
    if confine and ".." in raw.parts:
        return _refuse(given, raw, "'..' in the path: a landed file is named inside landing/")
    try:
        return _check_entry(given, _locate(raw), landing.resolve(), confine)
    except (OSError, RuntimeError, ValueError) as exc:  # a link loop, a name too long, ...
        return _refuse(given, raw, f"the path cannot be inspected ({_why(exc)})")


def _locate(raw: Path) -> Path:
    """Absolute, with the folders resolved (so a linked folder is seen for what it is) but the
    last part kept as named, so a link is judged as a link and not as its target."""
    absolute = raw if raw.is_absolute() else Path.cwd() / raw
    return absolute.parent.resolve() / absolute.name


def _check_entry(given: str, path: Path, landing: Path, confine: bool) -> CheckedPath:
    in_landing = path != landing and path.is_relative_to(landing)
    if confine and not in_landing:
        return _refuse(given, path, f"outside the landing folder ({landing}): never opened")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return CheckedPath(given, path, "missing", "no such file", in_landing)
    if stat.S_ISLNK(info.st_mode):
        if in_landing:
            target = one_line(os.readlink(path), 120)
            return _refuse(
                given,
                path,
                f"a symbolic link (to {target!r}) in the landing folder: its target is never "
                "read; land the file itself",
                in_landing,
                "a symbolic link",
            )
        return _check_entry(given, path.resolve(strict=True), landing, confine)
    return _check_kind(given, path, info, in_landing)


def _check_kind(given: str, path: Path, info: os.stat_result, in_landing: bool) -> CheckedPath:
    kind = _KINDS.get(stat.S_IFMT(info.st_mode))
    if kind is not None or not stat.S_ISREG(info.st_mode):
        kind = kind or "not a regular file"
        return _refuse(given, path, f"{kind}, not a regular file: never opened", in_landing, kind)
    if len(os.fsencode(path.name)) > MAX_NAME_BYTES:
        reason = f"a file name longer than {MAX_NAME_BYTES} bytes: rename it shorter"
        return _refuse(given, path, reason, in_landing, "a long name")
    if in_landing and info.st_nlink > 1:
        return _refuse(
            given,
            path,
            f"a hard link ({info.st_nlink} names for one file): a landed file must be its own "
            "copy, not another name for a file elsewhere",
            in_landing,
            "a hard link",
        )
    return CheckedPath(given, path, "ok", "", in_landing, identity=(info.st_dev, info.st_ino))


def unchanged(checked: CheckedPath) -> bool:
    """Whether the entry is still the regular file that passed the check. Asked again before
    the file is copied or moved, so a file swapped for a link after the check is refused
    instead of having its target copied into the home."""
    try:
        info = os.lstat(checked.path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) == checked.identity


def as_changed(checked: CheckedPath) -> CheckedPath:
    """The refusal for a file that did not stay what the check saw."""
    return _refuse(
        checked.given,
        checked.path,
        "the file changed (replaced or relinked) while it was being ingested",
        checked.in_landing,
        "a replaced entry",
    )


def _refuse(
    given: str, path: Path, reason: str, in_landing: bool = False, kind: str = "path"
) -> CheckedPath:
    return CheckedPath(
        given, path, "rejected", one_line(f"rejected path: {reason}"), in_landing, kind
    )


def _why(exc: BaseException) -> str:
    return one_line(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__, 80)
