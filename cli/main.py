"""The `assay` command: run, ingest, expectations suggest, predict, history, batches,
migrate-home, rollback, monitor, serve, site, status, serve-model, bench (cli.commands holds
them as a table, cli.handlers what each does).

A shell module, like flows/ and deployments/: the library never imports it. The flows are
imported only after the environment points Prefect's state at ASSAY_HOME, so a plain
`assay run` needs no server and leaves nothing outside that folder.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from assay.errors import AssayError, GateFailed, StoreUnreachable
from assay.home import Home
from cli.commands import COMMANDS, GROUPS
from cli.settings import DEFAULT_SPEC, GATE_FAILED, UNREACHABLE, USAGE

# The temporary Prefect API's start-up wait: Prefect's 20 s default is too short on a busy
# 2-core machine, where the first start takes 10-40 s.
EPHEMERAL_STARTUP_SECONDS = "120"
CONSOLE_HANDLER = "flows.console.OneLineConsoleHandler"


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


def build_parser() -> argparse.ArgumentParser:
    """The parser, one subcommand per row of cli.commands.COMMANDS."""
    parser = argparse.ArgumentParser(prog="assay", description=__doc__.splitlines()[0])
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument(
        "--home",
        type=Home.from_env,
        default=None,
        help="state folder (default: $ASSAY_HOME or ./.assay)",
    )
    one = argparse.ArgumentParser(add_help=False, parents=[home])
    one.add_argument(
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
    shared = {"one": one, "several": several}
    commands = parser.add_subparsers(dest="command", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for command in COMMANDS:
        group, _, name = command.name.rpartition(" ")
        where = commands
        if group:
            if group not in groups:
                holder = commands.add_parser(group, help=GROUPS[group])
                groups[group] = holder.add_subparsers(dest="action", required=True)
            where = groups[group]
        p = where.add_parser(name, parents=[shared[command.specs]], help=command.help)
        for a in command.args:
            p.add_argument(*a.names, **a.settings)
        p.set_defaults(func=command.handler)
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
