"""What each command does (cli/commands.py names them): read the arguments, call the flows or
the library, print, return an exit code. The flows are imported inside each handler, after
cli.main has pointed Prefect's state at ASSAY_HOME."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import warnings
from pathlib import Path

from assay.errors import AssayError
from assay.home import Home
from cli.settings import DEFAULT_SPEC, LOCAL_DASK, OK, QUARANTINED, REGISTRY_ALIASES, UNREACHABLE


def cmd_run(args: argparse.Namespace) -> int:
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


def cmd_ingest(args: argparse.Namespace) -> int:
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


def cmd_suggest(args: argparse.Namespace) -> int:
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


def cmd_predict(args: argparse.Namespace) -> int:
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


def cmd_history(args: argparse.Namespace) -> int:
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


def cmd_batches(args: argparse.Namespace) -> int:
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


def cmd_migrate_home(args: argparse.Namespace) -> int:
    from assay.config import load_spec
    from assay.home import legacy_layout, migrate

    if not legacy_layout(args.home.root):
        print(f"{args.home.root} already uses the per-dataset layout: nothing to move")
        return 0
    name = load_spec(args.spec).name
    moved = migrate(Home(args.home.root, name))
    print(f"moved {', '.join(moved)} into {args.home.root / 'datasets' / name}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from flows.rollback import rollback

    rollback(reason=args.reason, to=args.to, spec_path=str(args.spec), home=str(args.home.root))
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from flows.monitor import monitor

    print(monitor(spec_path=str(args.spec), home=str(args.home.root)))
    return 0


def _datasets(args: argparse.Namespace, default: list[Path]) -> list:
    """The datasets named by --spec (repeatable) and --specs DIR; `default` when neither."""
    from assay.datasets import load_datasets

    given = args.spec or ([] if args.specs else default)
    return load_datasets(given, args.specs)


def cmd_serve(args: argparse.Namespace) -> int:
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


def cmd_site(args: argparse.Namespace) -> int:
    from deployments.site import deploy_site, run_worker

    pool = deploy_site(args.name, args.spec, args.home, args.profile)
    if args.deploy_only:
        return 0
    run_worker(pool, args.home)


def cmd_status(args: argparse.Namespace) -> int:
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


def cmd_serve_model(args: argparse.Namespace) -> int:
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


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module(f"bench.{args.name}")
    except ModuleNotFoundError:
        raise AssayError(f"no benchmark named '{args.name}' (see bench/)") from None
    return module.main(spec_path=str(args.spec), profile=args.profile)
