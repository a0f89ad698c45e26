"""`assay serve`: the ops stack in one process tree.

It starts a Prefect server (SQLite under ASSAY_HOME, or PostgreSQL given its URL) unless
PREFECT_API_URL already names one, optionally an MLflow tracking server on PostgreSQL, creates
the global concurrency limits, watches each dataset's landing folder (one `assay.data.arrived`
event per poll that found complete files, about that dataset only), and serves the deployments
of deployments/prefect.yaml, once per dataset, until Ctrl-C, which stops everything it started.

Several datasets share one process, one Prefect server and one MLflow store. A second
`assay serve` pointed at a running server (PREFECT_API_URL) adds its datasets' deployments and
watchers beside the first's, which keep running.

Production (auth) mode, on when credentials are in the environment (deployments/auth.py):
the Prefect server requires basic auth and CSRF tokens, the MLflow server runs its basic-auth
app, and this process and its flow runs get the client credentials.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from assay.config import load_spec
from assay.data.landing import LandingWatcher, strays
from assay.datasets import Dataset
from assay.errors import AssayError
from assay.home import Home
from deployments import auth

STARTUP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class StackSettings:
    """What `assay serve` was asked for; every field has a CLI option."""

    datasets: tuple[Dataset, ...]
    home: Home
    profile: str | None = None
    deployments: Path | None = None
    prefect_port: int = 4200
    prefect_db: str | None = None  # postgresql+asyncpg://... ; None: SQLite under ASSAY_HOME
    mlflow_port: int = 5000
    mlflow_db: str | None = None  # postgresql://... ; None: the SQLite store under ASSAY_HOME
    max_runs: int = 4  # flow runs at once; more wait their turn (each is a process)
    max_trainings: int | None = None  # trainings at once over all datasets; None: leave as is
    watch_only: bool = False  # workers run the deployments (`prefect deploy`): only watch
    poll_seconds: float = 1.0  # landing folder
    settle_seconds: float = 1.0  # unchanged this long = completely written
    auth: bool = False  # require credentials even if none are set (else: on when any is set)


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


@contextmanager
def server(
    what: str, command: list[str], env: dict[str, str], log: Path, url: str, variable: str, ui: str
) -> Iterator[Callable[[], None]]:
    """Start a server; what it yields waits for `url`/health, then sets `variable` to `url`
    for this process and its flow runs. Waiting apart from starting lets servers start
    together."""
    with child(command, env, log) as process:
        print(f"{what} starting (log: {log}) ...", flush=True)

        def ready() -> None:
            wait_until_up(f"{url}/health", process, f"the {what}")
            os.environ[variable] = url
            print(ui, flush=True)

        yield ready


def prefect_server(
    settings: StackSettings, env: dict[str, str], access: auth.Access | None = None
) -> AbstractContextManager[Callable[[], None]]:
    """`prefect server start`, with basic auth and CSRF protection given `access`."""
    url = f"http://127.0.0.1:{settings.prefect_port}/api"
    server_env = {"PREFECT_UI_API_URL": url, **env}  # the UI calls this port, not 4200
    if access is not None:
        server_env |= access.prefect_server_env()
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
    log = settings.home.logs / "prefect-server.log"
    ui = f"Prefect UI: http://127.0.0.1:{settings.prefect_port}"
    return server("Prefect server", command, server_env, log, url, "PREFECT_API_URL", ui)


def mlflow_server(
    settings: StackSettings, env: dict[str, str], access: auth.Access | None = None
) -> AbstractContextManager[Callable[[], None]]:
    """An MLflow tracking server on the given backend store, artifacts under ASSAY_HOME
    (production: an object store URL instead), with `access` its basic-auth app."""
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
    # assay uses none of the server-side jobs (GenAI scorers, trace archival); they cost seven
    # consumer processes that respawn on Ctrl-C and hold up shutdown until SIGKILL.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **env}
    if access is not None:
        command += ["--app-name", "basic-auth"]
        env = env | access.mlflow_server_env(settings.home.root / "mlflow-auth", env)
    log = settings.home.logs / "mlflow-server.log"
    url = f"http://127.0.0.1:{settings.mlflow_port}"
    ui = f"MLflow UI: {url}"
    return server("MLflow server", command, env, log, url, "MLFLOW_TRACKING_URI", ui)


def watch_landing(settings: StackSettings, stop: threading.Event) -> None:
    """Emit `assay.data.arrived` for each dataset's files that became complete since the last
    poll; say once about anything in landing/ that no served dataset will pick up."""
    from tasks.events import data_arrived

    root, names = settings.home.landing_root, [d.name for d in settings.datasets]
    watchers = {}
    for name in names:
        where = settings.home.for_dataset(name)
        where.landing.mkdir(parents=True, exist_ok=True)
        watchers[name] = LandingWatcher(where.landing, where.ledger, settings.settle_seconds)
        print(f"Watching {where.landing} for {name}'s files", flush=True)
    told: set[Path] = set()
    while True:
        for stray in strays(root, names):
            if stray not in told:
                told.add(stray)
                where = f"{root}/<dataset>/"
                print(f"landing: {stray} is in no served dataset's folder ({where})", flush=True)
        for name, watcher in watchers.items():
            ready = watcher.poll()
            if ready:
                data_arrived(name, ready)
                print(f"landed for {name}: {', '.join(p.name for p in ready)}", flush=True)
        if stop.wait(settings.poll_seconds):
            return


def stop_on_interrupt_or_term() -> None:
    """Ctrl-C and SIGTERM (systemd, Kubernetes) both stop the stack. Set explicitly: a shell
    starts background jobs with SIGINT ignored, and Python then leaves it ignored."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def serve(settings: StackSettings) -> None:
    """Run the stack until Ctrl-C or SIGTERM; everything started here stops with it."""
    stop_on_interrupt_or_term()
    check_profile(settings)
    # Look for new runs every 2 s, not Prefect's 10 s: a landed file starts within seconds.
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    if settings.watch_only and not os.environ.get("PREFECT_API_URL"):
        raise AssayError("--watch-only emits to an existing server: set PREFECT_API_URL")
    starts_prefect = not os.environ.get("PREFECT_API_URL")
    access = access_control(settings, starts_prefect)
    env = auth.without_credentials(os.environ)
    if access is not None:
        os.environ.update(access.client_env())  # before Prefect reads its settings
    with ExitStack() as stack:
        servers = []
        if starts_prefect:
            servers.append(stack.enter_context(prefect_server(settings, env, access)))
        if settings.mlflow_db:
            servers.append(stack.enter_context(mlflow_server(settings, env, access)))
        for ready in servers:  # both start at once; a failure stops the other
            ready()

        # Prefect reads its settings when first imported: only now do they name the server.
        from prefect import serve as prefect_serve

        from tasks.concurrency import ensure_training_limits

        names = [d.name for d in settings.datasets]
        ensure_training_limits(names, settings.max_trainings)
        if settings.watch_only:
            with suppress(KeyboardInterrupt):
                watch_landing(settings, threading.Event())
            return
        deployments = served_deployments(settings)
        print(f"datasets: {', '.join(names)}", flush=True)
        warn_of_fixed_names(settings, names)
        stop = threading.Event()
        threading.Thread(
            target=watch_landing, args=(settings, stop), name="landing", daemon=True
        ).start()
        stack.callback(stop.set)
        with suppress(KeyboardInterrupt):
            prefect_serve(*deployments, limit=settings.max_runs)
        print("stopping: deployments, landing watcher and servers", flush=True)


def served_deployments(settings: StackSettings) -> list:
    """Every dataset's deployments, from the one template."""
    from deployments.catalog import DEPLOYMENTS_FILE, runner_deployments

    deployments = []
    for dataset in settings.datasets:
        parameters = {
            "spec_path": str(dataset.path),
            "home": str(settings.home.root),
            "profile": settings.profile,
        }
        deployments += runner_deployments(
            dataset.name, parameters, settings.deployments or DEPLOYMENTS_FILE
        )
    return deployments


def warn_of_fixed_names(settings: StackSettings, served: list[str]) -> None:
    """Earlier versions named each deployment after its flow (`train/train`), with triggers
    that match every dataset's events; on a server that still holds them, say how to remove
    them (they are the operator's to delete, not ours)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    from deployments.catalog import DEPLOYMENTS_FILE, read_entries

    entries = read_entries(settings.deployments or DEPLOYMENTS_FILE)
    flows = [str(e.get("entrypoint", "")).rsplit(":", 1)[-1] for e in entries]
    leftover = [n for n in flows if n not in served]
    with get_client(sync_client=True) as client:
        found = client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=leftover))
        )
        names = {f.id: f.name for f in client.read_flows()}
    for deployment in found:
        flow = names.get(deployment.flow_id)
        if flow == deployment.name:
            print(
                f"warning: deployment {flow}/{flow} is from an earlier assay (one dataset, fixed "
                f"names) and its trigger may match every dataset: `prefect deployment delete "
                f"{flow}/{flow}`",
                flush=True,
            )


def check_profile(settings: StackSettings) -> None:
    """A profile the train deployments will use must exist in every spec, before anything
    starts (a missing one would only fail at the first training)."""
    if settings.profile:
        for dataset in settings.datasets:
            load_spec(dataset.path, settings.profile)


def access_control(settings: StackSettings, starts_prefect: bool) -> auth.Access | None:
    """The credentials of auth mode, checked before anything starts; None when it is off."""
    if not auth.requested(os.environ, settings.auth):
        return None
    access = auth.access_from_env(
        os.environ, prefect_server=starts_prefect, mlflow_server=bool(settings.mlflow_db)
    )
    print("auth mode: basic auth on the servers, CSRF protection on the Prefect API", flush=True)
    return access


def _tool(name: str) -> list[str]:
    """The console script installed beside this interpreter (the venv's, not the PATH's)."""
    return [str(Path(sys.executable).with_name(name))]
