"""The `assay` command: run, ingest, expectations suggest, predict, history, rollback, monitor,
serve, status, serve-model, bench.

A shell module, like flows/ and deployments/: the library never imports it. The flows are
imported only after the environment points Prefect's state at ASSAY_HOME, so a plain
`assay run` needs no server and leaves nothing outside that folder.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import warnings
from pathlib import Path

from assay.errors import AssayError, GateFailed, StoreUnreachable
from assay.home import Home

DEFAULT_SPEC = "configs/adult.yaml"
# Exit codes (README and docs/commands.md): what a script that runs assay can tell apart.
OK, QUARANTINED, USAGE, GATE_FAILED, UNREACHABLE = 0, 1, 2, 3, 4
# The temporary Prefect API's start-up wait: Prefect's 20 s default is too short on a busy
# 2-core machine, where the first start takes 10-40 s.
EPHEMERAL_STARTUP_SECONDS = "120"
CONSOLE_HANDLER = "flows.console.OneLineConsoleHandler"
REGISTRY_ALIASES = ("champion", "challenger")
LOCAL_DASK = "local"


def prepare_environment(home: Home) -> None:
    """Keep Prefect's and GE's state under ASSAY_HOME unless the user already chose a place."""
    os.environ["ASSAY_HOME"] = str(home.root)
    home.prefect.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home.prefect))
    os.environ.setdefault("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(home.prefect / "results"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault(
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_STARTUP_SECONDS
    )
    if os.environ.get("ASSAY_TRACEBACKS") != "1":  # flows/console.py: none on the console
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS", CONSOLE_HANDLER)


def _cmd_run(args: argparse.Namespace) -> int:
    if args.dask:  # read by flows/runners.py when the train run starts
        os.environ["ASSAY_TASK_RUNNER"] = "dask"
        if args.dask != LOCAL_DASK:
            os.environ["ASSAY_DASK_ADDRESS"] = args.dask
    from assay.config import load_spec
    from flows.pipeline import run

    spec = load_spec(args.spec, args.profile)  # once: the run's ingest and training use it
    where = args.home.for_dataset(spec.name)
    result = run(str(args.spec), str(args.home.root), args.profile, spec)
    print()
    print(result.summary())
    print(f"\nValidation reports: {where.reports / 'validation'}")
    print(f"Quarantine: {where.quarantine}")
    return 0


def _dataset_home(args: argparse.Namespace) -> Home:
    """The namespace of the spec's dataset in the home."""
    from assay.config import load_spec

    return args.home.for_dataset(load_spec(args.spec).name)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from flows.ingest import ingest

    outcomes = ingest(
        paths=[str(p) for p in args.files], spec_path=str(args.spec), home=str(args.home.root)
    )
    rejected = [o for o in outcomes if o.status in ("quarantined", "rejected", "missing")]
    for o in outcomes:
        where = o.quarantine_dir or o.skipped_dir
        rows = f"{o.rows:,} rows; " if o.status in ("accepted", "duplicate") else ""
        print(f"{o.status} {o.path}: {rows}{o.reason}" + (f" -> {where}" if where else ""))
    return QUARANTINED if rejected else OK


def _cmd_suggest(args: argparse.Namespace) -> int:
    from assay.config import load_spec
    from assay.data.reader import read_table
    from assay.validation.suggest import suggest
    from assay.validation.suite import save_suite

    spec = load_spec(args.spec)
    reference = read_table(args.data, spec)
    out = args.out or Path("expectations") / f"{spec.name}.suggested.json"
    suite = suggest(reference, spec, unknown_category_rate=args.unknown_rate)
    save_suite(suite, out)
    print(f"wrote {len(suite.expectations)} expectations to {out}: review each one, then point")
    print(f"the spec's `expectations:` at it ({len(reference)} reference rows from {args.data})")
    return 0


def _model_folder(args: argparse.Namespace) -> Path:
    """A folder as given, or the package of a registry alias (champion, challenger) or
    version number of the spec's registered model, fetched into ASSAY_HOME."""
    given = Path(args.model)
    if given.exists() or not (args.model in REGISTRY_ALIASES or args.model.isdigit()):
        return given
    from assay.config import load_spec
    from assay.registry.models import UnverifiedPackageWarning, download

    name = load_spec(args.spec).registered_name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnverifiedPackageWarning)
        folder = download(args.home, name, args.model)
    _show(caught, UnverifiedPackageWarning)
    print(f"model: {name} {args.model} = {folder.name} ({folder})", file=sys.stderr)
    return folder


def _show(caught: list[warnings.WarningMessage], ours: type[Warning]) -> None:
    """Warnings of the `ours` kind as one `warning:` line each; any other as usual."""
    for w in caught:
        if issubclass(w.category, ours):
            print(f"warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _cmd_predict(args: argparse.Namespace) -> int:
    from assay.serving.predictor import predict_file

    try:
        rows = predict_file(_model_folder(args), args.input, args.out, args.chunk_rows)
    except BrokenPipeError:
        # Whoever read stdout (e.g. `| head`) stopped early; silence the flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    where = f" into {args.out}" if args.out else ""
    print(f"scored {rows} rows from {args.input}{where}", file=sys.stderr)
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    from assay.registry.audit import AuditLog

    where = _dataset_home(args)
    entries = AuditLog(where.audit).entries()
    if not entries:
        print(f"no promotions, rollbacks, quarantines or gate failures yet in {where.namespace}")
        return 0
    for e in entries:
        model = f"{e.model} v{e.version}" if e.version else e.model
        print(f"{e.time}  {e.actor:<12} {e.action:<13} {model:<18} {e.reason}")
        if e.evidence:
            print(f"{'':22}evidence: {json.dumps(e.evidence, sort_keys=True)}")
    return 0


def _cmd_batches(args: argparse.Namespace) -> int:
    from assay.data.store import BatchStore
    from assay.registry.audit import AuditEntry, AuditLog

    where = _dataset_home(args)
    store = BatchStore(where.batches)
    if args.action == "list":
        statuses = {c.batch: c for c in store.status_changes()}
        records = store.records()
        if not records:
            print(f"no batches yet in {where.batches}")
        for r in records:
            change = statuses.get(r.hash)
            status = change.status if change else "active"
            why = f"  ({change.reason})" if change and status != "active" else ""
            kind = "labelled" if r.labelled else "unlabelled"
            print(
                f"{r.hash[:12]}  {status:<10} {r.rows:>9,} rows  {kind:<10}  {r.accepted_at}  "
                f"{r.source}{why}"
            )
        return 0
    if not args.batch or not args.reason:
        raise AssayError(f"`assay batches {args.action}` needs a batch id and --reason TEXT")
    change = (store.retire if args.action == "retire" else store.restore)(args.batch, args.reason)
    AuditLog(where.audit).append(
        AuditEntry(f"batch-{args.action}d", args.reason, evidence={"batch": change.batch})
    )
    print(f"batch {change.batch[:12]} is {change.status}: {args.reason}")
    return 0


def _cmd_migrate_home(args: argparse.Namespace) -> int:
    from assay.config import load_spec
    from assay.home import legacy_layout, migrate

    if not legacy_layout(args.home.root):
        print(f"{args.home.root} already uses the per-dataset layout: nothing to move")
        return 0
    name = load_spec(args.spec).name
    moved = migrate(Home(args.home.root, name))
    print(f"moved {', '.join(moved)} into {args.home.root / 'datasets' / name}")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from flows.rollback import rollback

    rollback(reason=args.reason, to=args.to, spec_path=str(args.spec), home=str(args.home.root))
    return 0


def _cmd_monitor(args: argparse.Namespace) -> int:
    from flows.monitor import monitor

    print(monitor(spec_path=str(args.spec), home=str(args.home.root)))
    return 0


def _datasets(args: argparse.Namespace, default: list[Path]) -> list:
    """The datasets named by --spec (repeatable) and --specs DIR; `default` when neither."""
    from assay.datasets import load_datasets

    given = args.spec or ([] if args.specs else default)
    return load_datasets(given, args.specs)


def _cmd_serve(args: argparse.Namespace) -> int:
    from deployments.stack import StackSettings, serve

    if args.max_trainings is not None and args.max_trainings < 1:
        raise AssayError("--max-trainings must be at least 1")
    serve(
        StackSettings(
            datasets=tuple(_datasets(args, [Path(DEFAULT_SPEC)])),
            home=args.home,
            profile=args.profile,
            deployments=args.deployments,
            prefect_port=args.port,
            prefect_db=args.prefect_db,
            mlflow_port=args.mlflow_port,
            mlflow_db=args.mlflow_db,
            max_runs=args.max_runs,
            max_trainings=args.max_trainings,
            watch_only=args.watch_only,
            auth=args.auth,
        )
    )
    return 0


def _cmd_site(args: argparse.Namespace) -> int:
    from deployments.site import deploy_site, run_worker

    pool = deploy_site(args.name, args.spec, args.home, args.profile)
    if args.deploy_only:
        return 0
    run_worker(pool, args.home)


def _cmd_status(args: argparse.Namespace) -> int:
    from assay.status import dataset_status, home_datasets, registered_name, render
    from deployments.status import add_flow_runs, source

    if args.spec or args.specs:
        named = [(d.name, d.spec.registered_name) for d in _datasets(args, [])]
    else:
        named = [(n, registered_name(args.home, n)) for n in home_datasets(args.home)]
    if not named:
        raise AssayError(f"{args.home.root} holds no dataset yet: run `assay run` or `assay serve`")
    statuses = [dataset_status(args.home, name, model) for name, model in named]
    problem = add_flow_runs(statuses)
    if args.json:
        print(
            json.dumps(
                {"datasets": [s.to_dict() for s in statuses], "prefect": problem or source()},
                indent=2,
            )
        )
    else:
        print(render(statuses, problem or source()))
    return UNREACHABLE if problem else OK


def _cmd_serve_model(args: argparse.Namespace) -> int:
    import mlflow

    from assay.config import load_spec
    from assay.registry.models import client, require_registry
    from assay.serving.http import serve_model

    spec = load_spec(args.spec)
    require_registry(args.home, spec.registered_name)
    registry = client(args.home)
    mlflow.set_tracking_uri(registry.tracking_uri)
    traffic = args.home.for_dataset(spec.name).traffic
    address = (args.host, args.port)
    serve_model(registry, spec.registered_name, args.alias, address, args.poll_seconds, traffic)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module(f"bench.{args.name}")
    except ModuleNotFoundError:
        raise AssayError(f"no benchmark named '{args.name}' (see bench/)") from None
    return module.main(spec_path=str(args.spec), profile=args.profile)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assay", description=__doc__.splitlines()[0])
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument(
        "--home",
        type=Home.from_env,
        default=None,
        help="state folder (default: $ASSAY_HOME or ./.assay)",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[home])
    common.add_argument(
        "--spec",
        type=Path,
        default=Path(DEFAULT_SPEC),
        help=f"dataset spec YAML (default: {DEFAULT_SPEC})",
    )
    several = argparse.ArgumentParser(add_help=False, parents=[home])
    several.add_argument(
        "--spec",
        type=Path,
        action="append",
        help="a dataset's spec YAML; repeat for several datasets",
    )
    several.add_argument(
        "--specs", type=Path, metavar="DIR", help="every spec (*.yaml, *.yml) in DIR"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", parents=[common], help="ingest the bundled data, then train")
    p.add_argument(
        "--profile",
        help="named overrides from the spec's `profiles:` (e.g. quick: subsample, small model)",
    )
    p.add_argument(
        "--dask",
        nargs="?",
        const=LOCAL_DASK,
        metavar="ADDRESS",
        help="run the stages on Dask: a local cluster (one worker per core), or the scheduler "
        "at ADDRESS (tcp://host:8786)",
    )
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("ingest", parents=[common], help="validate files into the store")
    p.add_argument("files", nargs="+", type=Path, help="CSV, Parquet or JSON-lines files")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("expectations", help="work with Great Expectations suites")
    exp = p.add_subparsers(dest="action", required=True)
    p = exp.add_parser("suggest", parents=[common], help="draft a suite from a reference file")
    p.add_argument("data", type=Path, help="reference sample (same format as ingested files)")
    p.add_argument(
        "--out", type=Path, help="where to write (default: expectations/NAME.suggested.json)"
    )
    p.add_argument(
        "--unknown-rate",
        type=float,
        default=0.01,
        help="share of unseen categories tolerated before a batch is rejected",
    )
    p.set_defaults(func=_cmd_suggest)

    p = sub.add_parser(
        "predict", parents=[common], help="score a file with a deployed int8 model (no torch)"
    )
    p.add_argument(
        "--model",
        required=True,
        help="a model folder (spec.json, tokenizer/, model.int8.onnx[, decision.json]), or "
        "champion, challenger or a version number of the spec's registered model",
    )
    p.add_argument("input", type=Path, help="CSV (optionally .gz), Parquet or JSON-lines rows")
    p.add_argument(
        "--out",
        type=Path,
        help="write here; format by suffix: .csv, .parquet, .jsonl (default: CSV on stdout)",
    )
    p.add_argument(
        "--chunk-rows",
        type=int,
        default=50_000,
        help="rows read and scored at a time; bounds memory (default: 50000)",
    )
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "history", parents=[common], help="every promotion, rollback, quarantine, gate failure"
    )
    p.set_defaults(func=_cmd_history)

    p = sub.add_parser(
        "batches", parents=[common], help="list the dataset's batches, retire or restore one"
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=("list", "retire", "restore"),
        default="list",
        help="list (default); retire: leave the batch out of future snapshots; restore",
    )
    p.add_argument("batch", nargs="?", help="batch id (a prefix of its hash, as listed)")
    p.add_argument("--reason", help="why (kept in the audit log); needed to retire or restore")
    p.set_defaults(func=_cmd_batches)

    p = sub.add_parser(
        "migrate-home",
        parents=[common],
        help="move a single-dataset home (earlier layout) into the spec's dataset namespace",
    )
    p.set_defaults(func=_cmd_migrate_home)

    p = sub.add_parser("rollback", parents=[common], help="move champion back, with a reason")
    p.add_argument("--reason", required=True, help="why (kept in the audit log)")
    p.add_argument("--to", help="version to make champion (default: the previous champion)")
    p.set_defaults(func=_cmd_rollback)

    p = sub.add_parser(
        "monitor", parents=[common], help="check the batches since the last training for drift"
    )
    p.set_defaults(func=_cmd_monitor)

    p = sub.add_parser(
        "serve",
        parents=[several],
        help="the ops stack for one or more datasets: Prefect server, each dataset's "
        f"deployments and landing watcher (Ctrl-C stops all; default spec: {DEFAULT_SPEC})",
    )
    p.add_argument("--profile", help="spec profile the served train deployment uses")
    p.add_argument(
        "--deployments",
        type=Path,
        help="deployments file (default: deployments/prefect.yaml): schedules, triggers",
    )
    p.add_argument("--port", type=int, default=4200, help="Prefect server and UI port")
    p.add_argument(
        "--prefect-db",
        help="PostgreSQL URL for the Prefect server (postgresql+asyncpg://...; "
        "default: SQLite under ASSAY_HOME)",
    )
    p.add_argument(
        "--mlflow-db",
        help="PostgreSQL URL of an MLflow backend store (postgresql://...): starts an MLflow "
        "tracking server on it (default: the SQLite store under ASSAY_HOME, no server)",
    )
    p.add_argument("--mlflow-port", type=int, default=5000, help="MLflow server port")
    p.add_argument(
        "--auth",
        action="store_true",
        help="production mode: basic auth and CSRF on the Prefect server, MLflow's basic-auth "
        "app; credentials from ASSAY_PREFECT_AUTH=user:pass, PREFECT_SERVER_ENCRYPTION_KEY and "
        "(with --mlflow-db) ASSAY_MLFLOW_ADMIN_USER/_PASSWORD; on by itself when any is set",
    )
    p.add_argument(
        "--max-runs",
        type=int,
        default=4,
        help="flow runs at once (each is a process); more wait their turn (default: 4)",
    )
    p.add_argument(
        "--max-trainings",
        type=int,
        help="trainings at once over all datasets (one per dataset at most); default: one per "
        "4 cores, and an existing cap is left as set",
    )
    p.add_argument(
        "--watch-only",
        action="store_true",
        help="only watch the landing folder and emit events, for a server whose deployments "
        "run on workers (`prefect deploy`); needs PREFECT_API_URL",
    )
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser(
        "site",
        parents=[common],
        help="at a federation site: serve site-round/NAME on its own work pool, run its worker",
    )
    p.add_argument("--name", required=True, help="the site's name in the coordinator's spec")
    p.add_argument("--profile", help="spec profile the site's rounds read its spec with")
    p.add_argument(
        "--deploy-only", action="store_true", help="create the pool and deployment, start no worker"
    )
    p.set_defaults(func=_cmd_site)

    p = sub.add_parser(
        "status",
        parents=[several],
        help="per dataset: champion, challenger, last training, batches since, last drift "
        "check, flows queued or running (default: every dataset in the home)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser(
        "serve-model",
        parents=[common],
        help="serve a registry alias over HTTP (MLflow's scoring server), following it as it moves",
    )
    p.add_argument("--alias", default="champion", help="alias to serve (default: champion)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=5001, help="port (default: 5001)")
    p.add_argument(
        "--poll-seconds",
        type=float,
        default=30.0,
        help="how often to ask the registry whether the alias moved (default: 30)",
    )
    p.set_defaults(func=_cmd_serve_model)

    p = sub.add_parser("bench", parents=[common], help="run a benchmark; last line is JSON")
    p.add_argument(
        "name",
        help="benchmark name (a module in bench/): ingest, quality, compression, fairness, "
        "pipeline, scaling, serving, privacy, labels",
    )
    p.add_argument("--profile", help="spec profile for benchmarks that train (default: full)")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "home", None) is None:
        args.home = Home.from_env()
    prepare_environment(args.home)
    try:
        return args.func(args)
    except GateFailed as exc:
        if exc.summary:
            print()
            print(exc.summary)
        print(f"error: {exc}", file=sys.stderr)
        return GATE_FAILED
    except AssayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    except StoreUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return UNREACHABLE
    except RuntimeError as exc:
        if "ephemeral Prefect API" not in str(exc):
            raise
        print(
            f"error: the temporary Prefect API did not start within "
            f"{os.environ['PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS']} s (is the machine "
            "busy?): try again, raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start "
            "a server (`prefect server start`) and set PREFECT_API_URL",
            file=sys.stderr,
        )
        return UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
