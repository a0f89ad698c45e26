"""Access control of the production ops stack: with credentials in the environment,
`assay serve` runs the Prefect server with basic auth and CSRF protection and the MLflow server
with its basic-auth app. Plain HTTP shows what is refused and what is let in; that the
deployments got served at all shows `assay serve` itself passed both checks.

One stack serves the module; the credentials are made up per run, so none is in the repo.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import uuid

import httpx
import pytest
from cryptography.fernet import Fernet

from assay.errors import AssayError
from deployments import auth
from tests.ops.stack import ASSAY, ROOT, Stack, free_port, write_spec

pytestmark = [pytest.mark.reliability, pytest.mark.ops]

SERVED = {"adult"}  # ingest/adult, train/adult, ... (each named after its dataset)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """The stack in auth mode, its credentials, and the MLflow URL; stopped (and both servers
    checked gone) after the module."""
    folder = tmp_path_factory.mktemp("access")
    env = {
        auth.PREFECT_AUTH: f"operator:{secrets.token_urlsafe(16)}",
        auth.ENCRYPTION_KEY: Fernet.generate_key().decode(),
        auth.MLFLOW_USER: "mlflow-admin",
        auth.MLFLOW_PASSWORD: secrets.token_urlsafe(16),
    }
    mlflow_port = free_port()
    mlflow = f"http://127.0.0.1:{mlflow_port}"
    mlflow_db = f"sqlite:///{folder / 'mlflow.db'}"  # cheaper than PostgreSQL, same auth app
    stack = Stack.start_in(
        folder, "--mlflow-db", mlflow_db, "--mlflow-port", str(mlflow_port), env=env
    )
    try:
        yield stack, env, mlflow
    finally:
        assert stack.stop() == 0, stack.tail()
    assert not stack.up()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{mlflow}/health", timeout=2)


def basic(user_password: str) -> dict[str, str]:
    """The Authorization header a client sends for "user:password"."""
    return {"Authorization": "Basic " + base64.b64encode(user_password.encode()).decode()}


def test_the_stack_says_it_runs_in_auth_mode(secured):
    stack, _, _ = secured
    assert "auth mode" in stack.output()


def test_prefect_api_needs_the_right_credentials(secured):
    stack, env, _ = secured
    user, _, _ = env[auth.PREFECT_AUTH].partition(":")
    version = f"{stack.api}/admin/version"
    assert httpx.get(version, timeout=10).status_code == 401
    assert httpx.get(version, headers=basic(f"{user}:wrong"), timeout=10).status_code == 401
    assert httpx.get(version, headers={"Authorization": "Bearer x"}, timeout=10).status_code == 401
    assert httpx.get(version, headers=basic(env[auth.PREFECT_AUTH]), timeout=10).status_code == 200
    # health probes stay open (load balancers, k8s), and tell nothing
    assert httpx.get(f"{stack.api}/health", timeout=10).status_code == 200


def test_prefect_writes_need_a_csrf_token(secured):
    stack, env, _ = secured
    client = httpx.Client(base_url=stack.api, headers=basic(env[auth.PREFECT_AUTH]), timeout=10)
    with client:
        refused = client.post("/deployments/filter", json={})
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["detail"]

        me = str(uuid.uuid4())
        token = client.get("/csrf-token", params={"client": me}).raise_for_status().json()
        forged = {"Prefect-Csrf-Token": "not-the-token", "Prefect-Csrf-Client": me}
        assert client.post("/deployments/filter", json={}, headers=forged).status_code == 403
        other = {"Prefect-Csrf-Token": token["token"], "Prefect-Csrf-Client": str(uuid.uuid4())}
        assert client.post("/deployments/filter", json={}, headers=other).status_code == 403

        good = {"Prefect-Csrf-Token": token["token"], "Prefect-Csrf-Client": me}
        found = client.post("/deployments/filter", json={}, headers=good)
        assert found.status_code == 200
    # `assay serve` got through both checks: its deployments are there
    assert {d["name"] for d in found.json()} == SERVED and len(found.json()) == 5


def test_mlflow_api_needs_the_admin_credentials(secured):
    _, env, mlflow = secured
    search = f"{mlflow}/api/2.0/mlflow/experiments/search"
    params = {"max_results": 10}
    user, password = env[auth.MLFLOW_USER], env[auth.MLFLOW_PASSWORD]
    assert httpx.get(search, params=params, timeout=10).status_code == 401
    wrong = httpx.get(search, params=params, auth=(user, password + "x"), timeout=10)
    assert wrong.status_code == 401
    right = httpx.get(search, params=params, auth=(user, password), timeout=10)
    assert right.status_code == 200
    assert "experiments" in right.json()


def test_the_auth_config_on_disk_holds_no_secret(secured):
    stack, env, _ = secured
    (config,) = (stack.home / "mlflow-auth").glob("*.ini")
    text = config.read_text(encoding="utf-8")
    assert "database_uri" in text
    assert not any(value in text for value in env.values())


# -- refusing to start half-configured -------------------------------------------------------

KEY = Fernet.generate_key().decode()
GOOD = {auth.PREFECT_AUTH: "ops:pw", auth.ENCRYPTION_KEY: KEY}
PASSWORD = secrets.token_urlsafe(9)  # 12 characters, MLflow's minimum
MLFLOW = {auth.MLFLOW_USER: "admin", auth.MLFLOW_PASSWORD: PASSWORD}


@pytest.mark.parametrize(
    ("env", "mlflow_server", "names"),
    [
        ({auth.ENCRYPTION_KEY: KEY, **MLFLOW}, True, auth.PREFECT_AUTH),
        ({**GOOD, auth.PREFECT_AUTH: "no-colon"}, False, auth.PREFECT_AUTH),
        ({**GOOD, auth.PREFECT_AUTH: "ops:"}, False, auth.PREFECT_AUTH),
        ({auth.PREFECT_AUTH: "ops:pw"}, False, auth.ENCRYPTION_KEY),
        ({**GOOD, auth.ENCRYPTION_KEY: "not-a-key"}, False, auth.ENCRYPTION_KEY),
        (GOOD, True, auth.MLFLOW_PASSWORD),
        ({**GOOD, auth.MLFLOW_USER: "admin"}, False, auth.MLFLOW_PASSWORD),
        ({**GOOD, **MLFLOW, auth.MLFLOW_PASSWORD: PASSWORD[:11]}, True, auth.MLFLOW_PASSWORD),
    ],
)
def test_missing_or_bad_credentials_are_named(env, mlflow_server, names):
    with pytest.raises(AssayError, match=names) as caught:
        auth.access_from_env(env, prefect_server=True, mlflow_server=mlflow_server)
    assert "\n" not in str(caught.value)


def test_complete_credentials_reach_servers_and_clients():
    access = auth.access_from_env({**GOOD, **MLFLOW}, prefect_server=True, mlflow_server=True)
    assert access.prefect_server_env() == {
        "PREFECT_SERVER_API_AUTH_STRING": "ops:pw",
        "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED": "true",
    }
    assert access.client_env() == {
        "PREFECT_API_AUTH_STRING": "ops:pw",
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": PASSWORD,
    }


def test_auth_mode_is_on_when_any_credential_is_set():
    assert not auth.requested({})
    assert auth.requested({}, forced=True)
    assert all(auth.requested({name: "x"}) for name in auth.CREDENTIALS)


def test_serve_refuses_to_start_open_with_one_error_line(tmp_path):
    """A half-configured production stack stops before starting any server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env |= MLFLOW
    env.pop(auth.PREFECT_AUTH, None)
    spec = write_spec(tmp_path)
    command = [str(ASSAY), "serve", "--spec", str(spec), "--home", str(tmp_path / "home")]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: auth mode: set {auth.PREFECT_AUTH}=user:password for the Prefect server"
    ]
    assert not (tmp_path / "home" / "logs").exists()
