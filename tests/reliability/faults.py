"""Faults injected on purpose: a function that fails its first call, or kills the process.

`python -m tests.reliability.faults [--fail-once T]... [--kill-at T] -- ASSAY_ARGS...` runs the
assay CLI in this process with those faults in place (T is `module:attribute`, the attribute
may be `Class.method`). A kill is SIGKILL, sent the moment the target is entered: a crash in
the middle of a stage, with everything the stage wrote so far left on disk.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import importlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INJECTED = "injected transient fault"


def resolve(target: str) -> tuple[Any, str]:
    """The object holding the attribute, and the attribute's name."""
    module, _, attribute = target.partition(":")
    owner: Any = importlib.import_module(module)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def transient(target: str) -> OSError:
    return ConnectionError(f"{INJECTED} in {target}")


def disk_full(target: str) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", target)


@dataclass
class FailOnce:
    """Wraps a function: its first call fails (before doing anything, or after its side
    effects when after=True, as when a reply is lost); later calls go through."""

    target: str
    original: Callable[..., Any]
    after: bool = False
    error: Callable[[str], BaseException] = transient
    calls: list[int] = field(default_factory=list)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(1)
        if len(self.calls) > 1:
            return self.original(*args, **kwargs)
        print(f"{INJECTED} in {self.target}", flush=True)
        if self.after:
            self.original(*args, **kwargs)
        raise self.error(self.target)

    @property
    def failed(self) -> bool:
        return bool(self.calls)


def install(
    target: str, wrapper: Callable[[Callable[..., Any]], Any], setattr_: Callable = setattr
) -> None:
    """Replace the target with wrapper(original), as a plain function: a method stays a
    method (it still receives self). The target is named by the module that defines it; every
    module that already imported it by name gets the replacement too, so moving an import
    never moves the fault."""
    owner, name = resolve(target)
    original = getattr(owner, name)
    module = target.partition(":")[0]
    defined = getattr(original, "__module__", None) or module
    if defined != module and not defined.startswith(f"{module}."):  # pandas:DataFrame.to_parquet
        raise ValueError(f"{target}: name the module that defines it ({defined})")
    replacement = wrapper(original)

    def installed(*args: Any, **kwargs: Any) -> Any:
        return replacement(*args, **kwargs)

    for holder, attribute in [(owner, name), *importers(original)]:
        setattr_(holder, attribute, installed)


def importers(original: Any) -> list[tuple[Any, str]]:
    """(module, name) for every loaded module that holds `original` as a global."""
    return [
        (loaded, attribute)
        for loaded in list(sys.modules.values())
        for attribute, value in list(getattr(loaded, "__dict__", {}).items())
        if value is original
    ]


def fail_once(monkeypatch: Any, target: str, **options: Any) -> FailOnce:
    """In a test: the target fails once (undone with the monkeypatch)."""
    owner, name = resolve(target)
    fault = FailOnce(target, getattr(owner, name), **options)
    install(target, lambda _original: fault, monkeypatch.setattr)
    return fault


def always(monkeypatch: Any, target: str, error: Callable[[str], BaseException]) -> None:
    """In a test: every call to the target fails (a store that stays down, a full disk)."""

    def failing(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def fail(*args: Any, **kwargs: Any) -> Any:  # the same for every call
            raise error(target)

        return fail

    install(target, failing, monkeypatch.setattr)


def _kill(target: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
        def die(*args: Any, **kwargs: Any) -> Any:
            print(f"SIGKILL in {target}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        return die

    return wrapper


def run_faulty(assay_args: list[str], faults: list[str], log: Path) -> tuple[int, str]:
    """Run `assay` with faults (this module's options) in a child process until it exits or
    dies; then kill what it started (Prefect's API server outlives a SIGKILLed parent, holding
    its output pipe). Returns the exit status and the output."""
    command = [sys.executable, "-m", "tests.reliability.faults", *faults, "--", *assay_args]
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            command,
            cwd=Path(__file__).resolve().parents[2],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "ASSAY_PROGRESS": "0"},
        )
        try:
            code = process.wait(timeout=900)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    return code, log.read_text(encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fail-once", action="append", default=[], metavar="TARGET")
    parser.add_argument("--kill-at", metavar="TARGET")
    parser.add_argument("assay", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    for target in args.fail_once:
        install(target, functools.partial(FailOnce, target))
    if args.kill_at:
        install(args.kill_at, _kill(args.kill_at))
    from cli.main import main as assay

    return assay([a for a in args.assay if a != "--"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
