"""The parts of `assay serve` that start and stop server processes, and its bad settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from assay.errors import AssayError
from cli.main import main
from deployments.stack import child, wait_until_up
from tests.ops.stack import free_port


def test_a_server_that_dies_while_starting_is_one_clear_error():
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(AssayError, match="the test server exited with code 3 while starting"):
        wait_until_up(f"http://127.0.0.1:{free_port()}/health", process, "the test server")


def test_a_started_server_answers_and_stops_with_its_context(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with child(command, {}, tmp_path / "logs" / "http.log") as process:
        wait_until_up(f"http://127.0.0.1:{port}/", process, "the test server")
    assert process.poll() is not None, "the child outlived its context"


def test_watch_only_needs_a_server_to_emit_to(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    code = main(["serve", "--watch-only", "--home", str(tmp_path / "home")])
    assert code == 2
    assert (
        "--watch-only emits to an existing server: set PREFECT_API_URL" in capsys.readouterr().err
    )
