"""Production access control for `assay serve`: who may talk to the servers it starts.

Auth mode is on when any credential variable below is set (or `StackSettings.auth` asks for
it), so a half-configured production stack fails at start instead of running open. Secrets
come only from the environment; the one file written here (MLflow's auth config, under
ASSAY_HOME) holds no secret, so there is nothing to commit by mistake.

- ASSAY_PREFECT_AUTH="user:password": the Prefect server's basic auth
  (PREFECT_SERVER_API_AUTH_STRING) and what this process and its flow runs send
  (PREFECT_API_AUTH_STRING). CSRF protection is switched on with it.
- PREFECT_SERVER_ENCRYPTION_KEY (a Fernet key): encrypts Secret blocks; set explicitly so the
  key does not live in the database beside what it protects.
- ASSAY_MLFLOW_ADMIN_USER / ASSAY_MLFLOW_ADMIN_PASSWORD: the admin of MLflow's basic-auth app
  (MLFLOW_AUTH_ADMIN_USERNAME/PASSWORD, used when the user store is created) and what the
  flow runs send (MLFLOW_TRACKING_USERNAME/PASSWORD).
- MLFLOW_FLASK_SERVER_SECRET_KEY (optional): signs the MLflow UI's CSRF tokens; a random one
  per start when unset (UI sessions then end with a restart).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from assay.errors import AssayError

PREFECT_AUTH = "ASSAY_PREFECT_AUTH"
MLFLOW_USER = "ASSAY_MLFLOW_ADMIN_USER"
MLFLOW_PASSWORD = "ASSAY_MLFLOW_ADMIN_PASSWORD"
ENCRYPTION_KEY = "PREFECT_SERVER_ENCRYPTION_KEY"
FLASK_SECRET_KEY = "MLFLOW_FLASK_SERVER_SECRET_KEY"
CREDENTIALS = (PREFECT_AUTH, MLFLOW_USER, MLFLOW_PASSWORD)
MLFLOW_MIN_PASSWORD = 12  # mlflow.utils.validation._validate_password refuses shorter ones
FERNET_HINT = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


@dataclass(frozen=True)
class Access:
    """The credentials of one auth-mode stack, checked before anything starts."""

    prefect: str | None  # "user:password"; None: an external server, its own client settings
    mlflow_user: str | None
    mlflow_password: str | None

    def client_env(self) -> dict[str, str]:
        """What this process and its flow runs need to be let in."""
        env = {}
        if self.prefect:
            env["PREFECT_API_AUTH_STRING"] = self.prefect
        if self.mlflow_user and self.mlflow_password:
            env["MLFLOW_TRACKING_USERNAME"] = self.mlflow_user
            env["MLFLOW_TRACKING_PASSWORD"] = self.mlflow_password
        return env

    def prefect_server_env(self) -> dict[str, str]:
        """Basic auth on every API route but the health probes, and CSRF tokens on writes."""
        return {
            "PREFECT_SERVER_API_AUTH_STRING": str(self.prefect),
            "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED": "true",
        }

    def mlflow_server_env(self, folder: Path, env: Mapping[str, str]) -> dict[str, str]:
        """The basic-auth app's settings: a config file without secrets, the admin from here."""
        return {
            "MLFLOW_AUTH_CONFIG_PATH": str(write_mlflow_auth_config(folder)),
            "MLFLOW_AUTH_ADMIN_USERNAME": str(self.mlflow_user),
            "MLFLOW_AUTH_ADMIN_PASSWORD": str(self.mlflow_password),
            FLASK_SECRET_KEY: env.get(FLASK_SECRET_KEY) or secrets.token_urlsafe(32),
        }


def requested(env: Mapping[str, str], forced: bool = False) -> bool:
    """Any credential set means production: run closed or refuse to run."""
    return forced or any(env.get(name) for name in CREDENTIALS)


def access_from_env(env: Mapping[str, str], *, prefect_server: bool, mlflow_server: bool) -> Access:
    """The credentials auth mode needs for the servers this stack starts, or a one-line error
    naming the variable to set."""
    prefect = env.get(PREFECT_AUTH) or None
    if prefect is not None:
        _check_auth_string(prefect)
    elif prefect_server:
        raise AssayError(f"auth mode: set {PREFECT_AUTH}=user:password for the Prefect server")
    if prefect_server:
        _check_encryption_key(env.get(ENCRYPTION_KEY))
    user, password = env.get(MLFLOW_USER) or None, env.get(MLFLOW_PASSWORD) or None
    if (user is None) != (password is None) or (mlflow_server and user is None):
        raise AssayError(
            f"auth mode: set both {MLFLOW_USER} and {MLFLOW_PASSWORD} for the MLflow server"
        )
    if password is not None and len(password) < MLFLOW_MIN_PASSWORD:
        raise AssayError(f"auth mode: {MLFLOW_PASSWORD} needs {MLFLOW_MIN_PASSWORD}+ characters")
    return Access(prefect, user, password)


def without_credentials(env: Mapping[str, str]) -> dict[str, str]:
    """A server's environment: it gets the settings it needs, not the other servers' secrets."""
    return {k: v for k, v in env.items() if k not in CREDENTIALS}


def write_mlflow_auth_config(folder: Path) -> Path:
    """MLflow's auth config with its user store under ASSAY_HOME (the packaged default is a
    relative sqlite path, i.e. wherever the server happens to start). No secrets in it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "basic_auth.ini"
    store = (folder / "basic_auth.db").resolve()
    path.write_text(
        "[mlflow]\n"
        "# Written by `assay serve` at each start; the admin comes from the environment.\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{store}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n",
        encoding="utf-8",
    )
    return path


def _check_auth_string(value: str) -> None:
    user, sep, password = value.partition(":")
    if not (user and sep and password):
        raise AssayError(f"auth mode: {PREFECT_AUTH} must look like user:password")


def _check_encryption_key(key: str | None) -> None:
    """Prefect keeps Secret blocks encrypted; without this key it stores its own in the
    database, beside the secrets."""
    from cryptography.fernet import Fernet

    if not key:
        raise AssayError(f"auth mode: set {ENCRYPTION_KEY} (make one: {FERNET_HINT})")
    try:
        Fernet(key.encode())
    except ValueError:
        raise AssayError(
            f"auth mode: {ENCRYPTION_KEY} is not a Fernet key ({FERNET_HINT})"
        ) from None
