"""`assay serve`: the ops stack in one process tree.

It starts a Prefect server (SQLite under ASSAY_HOME, or PostgreSQL given its URL) unless
PREFECT_API_URL already names one, optionally an MLflow tracking server on PostgreSQL, creates
the global concurrency limits, watches the landing folder (one `assay.data.arrived` event per
complete file), and serves the deployments of deployments/prefect.yaml until Ctrl-C, which
stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from assay.data.landing import LandingWatcher
from assay.errors import AssayError
from assay.home import Home

STARTUP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class StackSettings:
    """What `assay serve` was asked for; every field has a CLI option."""

    spec_path: str
    home: Home
    profile: str | None = None
    deployments: Path | None = None
    prefect_port: int = 4200
    prefect_db: str | None = None  # postgresql+asyncpg://... ; None: SQLite under ASSAY_HOME
    mlflow_port: int = 5000
    mlflow_db: str | None = None  # postgresql://... ; None: the SQLite store under ASSAY_HOME
    max_runs: int = 4  # flow runs at once; more wait their turn (each is a process)
    watch_only: bool = False  # workers run the deployments (`prefect deploy`): only watch
    poll_seconds: float = 1.0  # landing folder
    settle_seconds: float = 1.0  # unchanged this long = completely written


def wait_until_up(url: str, process: subprocess.Popen | None, what: str) -> None:
    """Poll `url` until it answers 200; fail with the process's exit code if it dies first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssayError(f"{what} exited with code {process.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssayError(f"{what} did not answer at {url} within {STARTUP_TIMEOUT_S:.0f} s")


@contextmanager
def child(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A server process of ours, logging to `log`; on exit it gets SIGINT, then SIGKILL."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def prefect_server(settings: StackSettings, env: dict[str, str]) -> ExitStack:
    """Start `prefect server start` and point this process (and its flow runs) at it."""
    stack = ExitStack()
    url = f"http://127.0.0.1:{settings.prefect_port}/api"
    server_env = {"PREFECT_UI_API_URL": url, **env}  # the UI calls this port, not 4200
    if settings.prefect_db:
        server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = settings.prefect_db
    command = [
        *_tool("prefect"),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.prefect_port),
    ]
    log = settings.home.root / "logs" / "prefect-server.log"
    process = stack.enter_context(child(command, server_env, log))
    print(f"Prefect server starting (log: {log}) ...", flush=True)
    wait_until_up(f"{url}/health", process, "the Prefect server")
    os.environ["PREFECT_API_URL"] = url
    print(f"Prefect UI: http://127.0.0.1:{settings.prefect_port}", flush=True)
    return stack


def mlflow_server(settings: StackSettings, env: dict[str, str]) -> ExitStack:
    """Start an MLflow tracking server on the PostgreSQL backend store; artifacts under
    ASSAY_HOME (production: an object store URL instead)."""
    stack = ExitStack()
    artifacts = settings.home.mlflow_artifacts
    artifacts.mkdir(parents=True, exist_ok=True)
    command = [
        *_tool("mlflow"),
        "server",
        "--backend-store-uri",
        str(settings.mlflow_db),
        "--artifacts-destination",
        artifacts.as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.mlflow_port),
        "--workers",
        "1",
    ]
    log = settings.home.root / "logs" / "mlflow-server.log"
    process = stack.enter_context(child(command, env, log))
    url = f"http://127.0.0.1:{settings.mlflow_port}"
    print(f"MLflow server starting (log: {log}) ...", flush=True)
    wait_until_up(f"{url}/health", process, "the MLflow server")
    os.environ["MLFLOW_TRACKING_URI"] = url
    print(f"MLflow UI: {url}", flush=True)
    return stack


def watch_landing(settings: StackSettings, stop: threading.Event) -> None:
    """Emit `assay.data.arrived` once per complete file in the landing folder."""
    from tasks.events import data_arrived

    landing = settings.home.landing
    landing.mkdir(parents=True, exist_ok=True)
    watcher = LandingWatcher(
        landing, settings.home.root / "store" / "landing-ledger.json", settings.settle_seconds
    )
    print(f"Watching {landing} for new files", flush=True)
    while not stop.wait(settings.poll_seconds):
        for path in watcher.poll():
            data_arrived(path)
            print(f"landed: {path.name}", flush=True)


def serve(settings: StackSettings) -> None:
    """Run the stack until Ctrl-C; everything started here stops with it."""
    # Look for new runs every 2 s, not Prefect's 10 s: a landed file starts within seconds.
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    if settings.watch_only and not os.environ.get("PREFECT_API_URL"):
        raise AssayError("--watch-only emits to an existing server: set PREFECT_API_URL")
    env = dict(os.environ)
    with ExitStack() as stack:
        if not os.environ.get("PREFECT_API_URL"):
            stack.enter_context(prefect_server(settings, env))
        if settings.mlflow_db:
            stack.enter_context(mlflow_server(settings, env))

        # Prefect reads its settings when first imported: only now do they name the server.
        from prefect import serve as prefect_serve

        from deployments.catalog import DEPLOYMENTS_FILE, runner_deployments
        from tasks.concurrency import ensure_training_limit

        ensure_training_limit()
        if settings.watch_only:
            with suppress(KeyboardInterrupt):
                watch_landing(settings, threading.Event())
            return
        deployments = runner_deployments(
            {
                "spec_path": str(Path(settings.spec_path).resolve()),
                "home": str(settings.home.root),
                "profile": settings.profile,
            },
            settings.deployments or DEPLOYMENTS_FILE,
        )
        stop = threading.Event()
        threading.Thread(
            target=watch_landing, args=(settings, stop), name="landing", daemon=True
        ).start()
        stack.callback(stop.set)
        with suppress(KeyboardInterrupt):
            prefect_serve(*deployments, limit=settings.max_runs)
        print("stopping: deployments, landing watcher and servers", flush=True)


def _tool(name: str) -> list[str]:
    """The console script installed beside this interpreter (the venv's, not the PATH's)."""
    return [str(Path(sys.executable).with_name(name))]
