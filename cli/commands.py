"""The command line as one table: each command's name (a group and its command, such as
`expectations suggest`), its help, which specs it takes (one `--spec`, or `--spec` repeated
and `--specs DIR`), its own arguments and its handler (cli.handlers). cli.main builds the
parser from it; adding a command is one row here and one handler."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cli import handlers as h
from cli.settings import DEFAULT_SPEC, LOCAL_DASK


@dataclass(frozen=True)
class Arg:
    """One argument: add_argument's names and settings."""

    names: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)


def arg(*names: str, **settings: Any) -> Arg:
    return Arg(names, settings)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    handler: Callable[[argparse.Namespace], int]
    specs: Literal["one", "several"] = "one"
    args: tuple[Arg, ...] = ()


# Commands that are groups of subcommands (`assay expectations suggest`), and their help
GROUPS = {"expectations": "work with Great Expectations suites"}
PROFILE = "named overrides from the spec's `profiles:` (e.g. quick: subsample, small model)"

COMMANDS: tuple[Command, ...] = (
    Command("run", "ingest the bundled data, then train", h.cmd_run, args=(
        arg("--profile", help=PROFILE),
        arg("--dask", nargs="?", const=LOCAL_DASK, metavar="ADDRESS",
            help="run the stages on Dask: a local cluster (one worker per core), or the "
            "scheduler at ADDRESS (tcp://host:8786)"),
    )),
    Command("ingest", "validate files into the store", h.cmd_ingest, args=(
        arg("files", nargs="+", type=Path, help="CSV, Parquet or JSON-lines files"),
    )),
    Command("expectations suggest", "draft a suite from a reference file", h.cmd_suggest, args=(
        arg("data", type=Path, help="reference sample (same format as ingested files)"),
        arg("--out", type=Path,
            help="where to write (default: expectations/NAME.suggested.json)"),
        arg("--unknown-rate", type=float, default=0.01,
            help="share of unseen categories tolerated before a batch is rejected"),
    )),
    Command("predict", "score a file with a deployed int8 model (no torch)", h.cmd_predict, args=(
        arg("--model", required=True,
            help="a model folder (spec.json, tokenizer/, model.int8.onnx[, decision.json]), "
            "or champion, challenger or a version number of the spec's registered model"),
        arg("input", type=Path, help="CSV (optionally .gz), Parquet or JSON-lines rows"),
        arg("--out", type=Path,
            help="write here; format by suffix: .csv, .parquet, .jsonl (default: CSV on stdout)"),
        arg("--chunk-rows", type=int, default=50_000,
            help="rows read and scored at a time; bounds memory (default: 50000)"),
    )),
    Command("history", "every promotion, rollback, quarantine, gate failure", h.cmd_history),
    Command("batches", "list the dataset's batches, retire or restore one", h.cmd_batches, args=(
        arg("action", nargs="?", choices=("list", "retire", "restore"), default="list",
            help="list (default); retire: leave the batch out of future snapshots; restore"),
        arg("batch", nargs="?", help="batch id (a prefix of its hash, as listed)"),
        arg("--reason", help="why (kept in the audit log); needed to retire or restore"),
    )),
    Command("migrate-home",
            "move a single-dataset home (earlier layout) into the spec's dataset namespace",
            h.cmd_migrate_home),
    Command("rollback", "move champion back, with a reason", h.cmd_rollback, args=(
        arg("--reason", required=True, help="why (kept in the audit log)"),
        arg("--to", help="version to make champion (default: the previous champion)"),
    )),
    Command("monitor", "check the batches since the last training for drift", h.cmd_monitor),
    Command("serve",
            "the ops stack for one or more datasets: Prefect server, each dataset's deployments "
            f"and landing watcher (Ctrl-C stops all; default spec: {DEFAULT_SPEC})",
            h.cmd_serve, specs="several", args=(
        arg("--profile", help="spec profile the served train deployment uses"),
        arg("--deployments", type=Path,
            help="deployments file (default: deployments/prefect.yaml): schedules, triggers"),
        arg("--port", type=int, default=4200, help="Prefect server and UI port"),
        arg("--prefect-db",
            help="PostgreSQL URL for the Prefect server (postgresql+asyncpg://...; "
            "default: SQLite under ASSAY_HOME)"),
        arg("--mlflow-db",
            help="PostgreSQL URL of an MLflow backend store (postgresql://...): starts an MLflow "
            "tracking server on it (default: the SQLite store under ASSAY_HOME, no server)"),
        arg("--mlflow-port", type=int, default=5000, help="MLflow server port"),
        arg("--auth", action="store_true",
            help="production mode: basic auth and CSRF on the Prefect server, MLflow's "
            "basic-auth app; credentials from ASSAY_PREFECT_AUTH=user:pass, "
            "PREFECT_SERVER_ENCRYPTION_KEY and (with --mlflow-db) "
            "ASSAY_MLFLOW_ADMIN_USER/_PASSWORD; on by itself when any is set"),
        arg("--max-runs", type=int, default=4,
            help="flow runs at once (each is a process); more wait their turn (default: 4)"),
        arg("--max-trainings", type=int,
            help="trainings at once over all datasets (one per dataset at most); default: one "
            "per 4 cores, and an existing cap is left as set"),
        arg("--watch-only", action="store_true",
            help="only watch the landing folder and emit events, for a server whose "
            "deployments run on workers (`prefect deploy`); needs PREFECT_API_URL"),
    )),
    Command("site",
            "at a federation site: serve site-round/NAME on its own work pool, run its worker",
            h.cmd_site, args=(
        arg("--name", required=True, help="the site's name in the coordinator's spec"),
        arg("--profile", help="spec profile the site's rounds read its spec with"),
        arg("--deploy-only", action="store_true",
            help="create the pool and deployment, start no worker"),
    )),
    Command("status",
            "per dataset: champion, challenger, last training, batches since, last drift "
            "check, flows queued or running (default: every dataset in the home)",
            h.cmd_status, specs="several", args=(
        arg("--json", action="store_true", help="one JSON object, for scripts"),
    )),
    Command("serve-model",
            "serve a registry alias over HTTP (MLflow's scoring server), following it as it "
            "moves", h.cmd_serve_model, args=(
        arg("--alias", default="champion", help="alias to serve (default: champion)"),
        arg("--host", default="127.0.0.1", help="address to listen on"),
        arg("--port", type=int, default=5001, help="port (default: 5001)"),
        arg("--poll-seconds", type=float, default=30.0,
            help="how often to ask the registry whether the alias moved (default: 30)"),
    )),
    Command("bench", "run a benchmark; last line is JSON", h.cmd_bench, args=(
        arg("name",
            help="benchmark name (a module in bench/): ingest, quality, compression, fairness, "
            "pipeline, scaling, serving, privacy, labels, students"),
        arg("--profile", help="spec profile for benchmarks that train (default: full)"),
    )),
)  # fmt: skip
