"""The production variant of the ops stack: given database URLs, `assay serve` runs the Prefect
server and an MLflow tracking server on PostgreSQL (this machine's, 127.0.0.1:5432, trust
auth). The test creates its own databases and drops them afterwards."""

from __future__ import annotations

import signal
import uuid

import httpx
import pytest

from tests.ops.stack import Stack, adult_lines, free_port, write_deployments, write_spec

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.ops

SERVER = "host=127.0.0.1 port=5432 user=postgres"


def admin(sql: str) -> list[tuple]:
    connection = psycopg.connect(f"{SERVER} dbname=postgres", autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def query(database: str, sql: str) -> list[tuple]:
    connection = psycopg.connect(f"{SERVER} dbname={database}")
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


@pytest.fixture
def databases():
    try:
        admin("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at 127.0.0.1:5432: {exc}")
    suffix = uuid.uuid4().hex[:8]
    names = {"prefect": f"assay_test_prefect_{suffix}", "mlflow": f"assay_test_mlflow_{suffix}"}
    for name in names.values():
        admin(f"CREATE DATABASE {name}")
    yield names
    for name in names.values():
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_serve_runs_prefect_and_mlflow_on_postgresql(databases, tmp_path):
    base = "postgres@127.0.0.1:5432"
    mlflow_port = free_port()
    stack = Stack.start(
        tmp_path / "home",
        write_spec(tmp_path),
        write_deployments(tmp_path, lambda d: d["monitor"].update(schedules=[])),
        "--prefect-db",
        f"postgresql+asyncpg://{base}/{databases['prefect']}",
        "--mlflow-db",
        f"postgresql://{base}/{databases['mlflow']}",
        "--mlflow-port",
        str(mlflow_port),
    )
    try:
        # Prefect: a landed file becomes an ingest run, recorded in PostgreSQL
        path = stack.drop("pg.csv", adult_lines(0, 200))
        (run,) = stack.wait_for(lambda: stack.ingests_of(path), 60, "ingest run")
        assert run["state_type"] == "COMPLETED"
        stored = query(
            databases["prefect"], f"SELECT state_type FROM flow_run WHERE id = '{run['id']}'"
        )
        assert stored == [("COMPLETED",)]

        # MLflow: the tracking server answers and keeps what it is given in PostgreSQL
        mlflow_url = f"http://127.0.0.1:{mlflow_port}"
        created = httpx.post(
            f"{mlflow_url}/api/2.0/mlflow/experiments/create", json={"name": "pg-check"}, timeout=10
        ).raise_for_status()
        assert created.json()["experiment_id"]
        names = query(databases["mlflow"], "SELECT name FROM experiments")
        assert ("pg-check",) in names
    finally:
        assert stack.stop(signal.SIGTERM) == 0, stack.tail()  # as systemd stops a service
    assert not stack.up()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{mlflow_port}/health", timeout=2)
