"""A real ops stack for tests: `assay serve` in a subprocess (it starts `prefect server start`),
read through the server's REST API, fed by files dropped in its landing folder."""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from deployments import auth

ROOT = Path(__file__).resolve().parents[2]
ASSAY = Path(sys.executable).with_name("assay")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def adult_lines(start: int, count: int, test_file: bool = False) -> str:
    """Rows of the bundled UCI files as they arrive (no header), from data line `start`."""
    name = "adult.test.gz" if test_file else "adult.data.gz"
    with gzip.open(ROOT / "data" / name, "rt", encoding="utf-8") as f:
        lines = [line for line in f if line.strip() and not line.startswith("|")]
    return "".join(lines[start : start + count])


def merged(base: dict, override: dict) -> dict:
    """Deep merge, as spec profiles are: an override lists only what differs."""
    out = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merged(out[key], value) if both else value
    return out


def write_spec(folder: Path, **overrides: Any) -> Path:
    """configs/adult.yaml with absolute paths, no bundled files, and `overrides` merged in."""
    raw = yaml.safe_load((ROOT / "configs" / "adult.yaml").read_text(encoding="utf-8"))
    raw["expectations"] = str(ROOT / "expectations" / "adult.json")
    raw["bundled"] = []
    raw = merged(raw, overrides)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def write_deployments(folder: Path, change: Callable[[dict], None]) -> Path:
    """deployments/prefect.yaml with `change` applied to its deployments, by flow name (each
    is named after the dataset it is filled in for)."""
    raw = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text(encoding="utf-8"))
    change({d["entrypoint"].rsplit(":", 1)[1]: d for d in raw["deployments"]})
    path = folder / "prefect.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@dataclass
class Stack:
    home: Path
    api: str
    process: subprocess.Popen
    log: Path

    # -- starting and stopping ---------------------------------------------------------------
    @classmethod
    def start(
        cls,
        home: Path,
        spec: Path | list[Path],
        deployments: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        api: str | None = None,
    ) -> Stack:
        """`assay serve` of one spec or several. `env` adds to a clean environment: no
        PREFECT_/MLFLOW_ settings or credentials of the caller (they would turn on auth mode).
        `api`: serve against this running server instead of starting one."""
        port = free_port()
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "MLFLOW_"))
            and k not in ("ASSAY_HOME", *auth.CREDENTIALS)
        }
        clean |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "ASSAY_PROGRESS": "0"}
        env = clean | (env or {}) | ({"PREFECT_API_URL": api} if api else {})
        home.mkdir(parents=True, exist_ok=True)
        log = home / f"serve-{port}.log"
        specs = [
            a
            for path in (spec if isinstance(spec, list) else [spec])
            for a in ("--spec", str(path))
        ]
        command = [str(ASSAY), "serve", *specs, "--home", str(home)]
        command += ["--port", str(port), "--deployments", str(deployments), *extra]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                # as a shell starts a background job: Ctrl-C must still stop the stack
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
            )
        stack = cls(home, api or f"http://127.0.0.1:{port}/api", process, log)
        stack.wait_for(lambda: "being served" in stack.output(), 180, "the deployments served")
        return stack

    @classmethod
    def start_in(cls, folder: Path, *extra: str, env: dict[str, str] | None = None) -> Stack:
        """The default spec and deployments without the monitor's schedule (no runs but the
        ones a test causes), home under `folder`."""
        no_schedule = write_deployments(folder, lambda d: d["monitor"].update(schedules=[]))
        return cls.start(folder / "home", write_spec(folder), no_schedule, *extra, env=env)

    def stop(self, how: signal.Signals = signal.SIGINT) -> int:
        """Ctrl-C as an operator would (or SIGTERM, as systemd would); returns the exit code."""
        self.process.send_signal(how)
        return self.process.wait(timeout=90)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def up(self) -> bool:
        try:
            return httpx.get(f"{self.api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    # -- feeding it ----------------------------------------------------------------------------
    def drop(self, name: str, text: str, dataset: str = "adult") -> Path:
        """Write beside the dataset's landing folder, then rename in: the watcher sees a whole
        file."""
        landing = self.home / "landing" / dataset
        landing.mkdir(parents=True, exist_ok=True)
        partial = landing / f".{name}.part"
        partial.write_text(text, encoding="utf-8")
        return partial.rename(landing / name)

    # -- reading it ----------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """One API call; a 503 (the server's SQLite busy under load, which it marks retryable)
        is retried with backoff, as Prefect's own client does."""
        for wait in (1, 2, 4, 8, 16):
            response = httpx.request(method, f"{self.api}{path}", json=body, timeout=10)
            if response.status_code != 503:
                break
            time.sleep(wait)
        return response.raise_for_status()

    def get(self, path: str) -> Any:
        return self.request("GET", path).json()

    def post(self, path: str, body: Any) -> Any:
        response = self.request("POST", path, body)
        return response.json() if response.content else None

    def why(self, run: dict) -> str:
        """A finished run's state message and its error logs: what a failed assertion shows."""
        body = {"logs": {"flow_run_id": {"any_": [run["id"]]}, "level": {"ge_": 40}}, "limit": 20}
        errors = "\n".join(log["message"][-1500:] for log in self.post("/logs/filter", body))
        return f"{run['name']} {run['state_type']}: {(run.get('state') or {}).get('message')}\n{errors}"

    def flow_runs(self, flow: str, dataset: str = "adult") -> list[dict]:
        """Runs of `flow` tagged with the dataset."""
        body = {
            "flows": {"name": {"any_": [flow]}},
            "flow_runs": {"tags": {"all_": [f"dataset:{dataset}"]}},
            "sort": "START_TIME_ASC",
            "limit": 200,
        }
        return self.post("/flow_runs/filter", body)

    def deployment(self, flow: str, dataset: str = "adult") -> dict:
        """`flow/dataset`, as the server holds it."""
        body = {
            "flows": {"name": {"any_": [flow]}},
            "deployments": {"name": {"any_": [dataset]}},
        }
        (found,) = self.post("/deployments/filter", body)
        return found

    def finished(self, flow: str, dataset: str = "adult", **parameters: Any) -> list[dict]:
        """Runs of `flow` for the dataset in a final state, optionally with these parameters."""
        return [
            r
            for r in self.flow_runs(flow, dataset)
            if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED")
            and all(r["parameters"].get(k) == v for k, v in parameters.items())
        ]

    def ingests_of(self, path: Path, dataset: str = "adult") -> list[dict]:
        """Finished ingest runs that took this file (files landing together share a run)."""
        runs = self.finished("ingest", dataset)
        return [r for r in runs if str(path) in r["parameters"]["paths"]]

    def events(self, name: str, dataset: str = "adult") -> list[dict]:
        body = {
            "filter": {
                "event": {"name": [name]},
                "any_resource": {"id": [f"assay.dataset.{dataset}"]},
            },
            "limit": 50,
        }
        return self.post("/events/filter", body)["events"]

    def held_slot(self, run: dict) -> tuple[str, str]:
        """When a train run held its training slot: its first task (none runs before the
        slot is taken) to its end."""
        body = {"flow_runs": {"id": {"any_": [run["id"]]}}, "sort": "EXPECTED_START_TIME_ASC"}
        starts = [t["start_time"] for t in self.post("/task_runs/filter", body) if t["start_time"]]
        return min(starts), run["end_time"]

    def wait_for(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll `check` until it returns something truthy; fail naming `what`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"assay serve exited ({self.process.returncode}):\n{self.tail()}"
                )
            found = check()
            if found:
                return found
            time.sleep(1)
        raise AssertionError(f"no {what} within {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])
