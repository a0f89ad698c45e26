"""Every test passes alone and in any order: a seeded random sample of the suite, each test run
alone in its own process, then the whole sample in a shuffled order (pytest-randomly) and in
reversed order. `make test-isolation` runs it; the last line is one JSON object.

    python -m tests.isolation [--sample 20] [--seed 19] [-m "not ops"]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def collect(marker: str) -> list[str]:
    """Every test id the marker expression selects, in collection order."""
    listed = subprocess.run(
        [*PYTEST, "--collect-only", "-m", marker], capture_output=True, text=True, check=True
    )
    return [line for line in listed.stdout.splitlines() if "::" in line]


def passes(*args: str) -> tuple[bool, float, str]:
    """Whether one pytest process over `args` passes, its seconds, and its last line."""
    start = time.monotonic()
    done = subprocess.run([*PYTEST, *args], capture_output=True, text=True)
    last = (done.stdout.strip().splitlines() or [""])[-1]
    return done.returncode == 0, round(time.monotonic() - start, 1), last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("-m", dest="marker", default="not ops", help="which tests to draw from")
    args = parser.parse_args(argv)
    ids = collect(args.marker)
    sample = sorted(random.Random(args.seed).sample(ids, min(args.sample, len(ids))))
    alone = {}
    for test in sample:
        ok, seconds, last = passes("-p", "no:randomly", test)
        alone[test] = {"passed": ok, "seconds": seconds}
        print(f"{'ok  ' if ok else 'FAIL'} alone {seconds:7.1f} s  {test}  ({last})", flush=True)
    orders = {
        "shuffled": passes("-p", "randomly", f"--randomly-seed={args.seed}", *sample),
        "reversed": passes("-p", "no:randomly", *reversed(sample)),
    }
    for name, (ok, seconds, last) in orders.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name} {seconds:7.1f} s  ({last})", flush=True)
    failed = [t for t, r in alone.items() if not r["passed"]]
    failed += [name for name, (ok, _, _) in orders.items() if not ok]
    summary = {
        "drawn_from": len(ids),
        "sample": len(sample),
        "seed": args.seed,
        "alone_seconds": round(sum(r["seconds"] for r in alone.values()), 1),
        **{f"{name}_seconds": seconds for name, (_, seconds, _) in orders.items()},
        "failed": failed,
    }
    print(json.dumps(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
