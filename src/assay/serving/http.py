"""`assay serve-model`: MLflow's own scoring server on a registry alias, stricter about columns
and following the alias as it moves.

The app is MLflow's (`mlflow.pyfunc.scoring_server.init`, what `mlflow models serve` runs), so
requests and answers are MLflow's: /invocations takes `dataframe_split`, `dataframe_records`
and CSV. In front of it sits a check MLflow does not make in full: a request naming a column
the model does not take, lacking one it needs, or with a cell that is not a number in a numeric
column gets HTTP 400 with one line naming the column (MLflow ignores unknown columns, names a
missing one inside a dump of the whole request, and a bad CSV number without its column). Every
answer carries the version it came from (`X-Assay-Model-Version`).

A thread asks the registry every `poll_seconds` which version holds the alias; when it moves,
the new version is loaded (its package digest checked) beside the old one, and new requests go
to it: no restart and no dropped request. A version that fails to load is reported and the
old one keeps serving.
"""

from __future__ import annotations

import io
import json
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import uvicorn
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server
from mlflow.tracking import MlflowClient

from assay.errors import AssayError
from assay.serving.pyfunc import MODEL_CODE
from assay.serving.traffic import TRAFFIC_ENV

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
VERSION_HEADER = b"x-assay-model-version"


@dataclass(frozen=True)
class Loaded:
    """One version, ready: MLflow's app over it and the columns its signature takes, with
    their MLflow types."""

    version: str
    app: App
    required: dict[str, str]
    optional: dict[str, str]
    ignored: str  # the label column: a labelled file may be sent as it is


def load_version(name: str, version: str) -> Loaded:
    """Load a version of ours: a pyfunc logged from assay's model file, never a pickle."""
    uri = f"models:/{name}/{version}"
    flavor = mlflow.models.get_model_info(uri).flavors.get("python_function", {})
    from_code = flavor.get("loader_module") == "mlflow.pyfunc.loaders.code_model"
    if not from_code or Path(str(flavor.get("model_code_path"))).name != MODEL_CODE.name:
        raise AssayError(f"{name} v{version} is not an assay pyfunc (logged from code): retrain")
    model = mlflow.pyfunc.load_model(uri)
    schema = model.metadata.get_input_schema()
    columns = schema.inputs if schema else []
    required = {c.name: c.type.name for c in columns if c.required}
    optional = {c.name: c.type.name for c in columns if not c.required}
    label = model.unwrap_python_model().predictor.spec.label.column
    return Loaded(version, scoring_server.init(model), required, optional, label)


def request_problem(body: bytes, content_type: str, loaded: Loaded) -> str | None:
    """One line naming the first unknown, missing or mistyped column of a request, or None
    (also for a body MLflow itself will refuse, or a format without column names)."""
    columns = request_columns(body, content_type)
    if columns is None:
        return None
    names, cells = columns
    types = {**loaded.required, **loaded.optional}
    if unknown := [c for c in names if c not in types and c != loaded.ignored]:
        return f"unknown column '{unknown[0]}'{_more(unknown)}: the model takes {', '.join(types)}"
    if missing := [c for c in loaded.required if c not in names]:
        return f"missing column '{missing[0]}'{_more(missing)}: every row needs it"
    for name in (n for n in names if types.get(n) == "double"):
        bad = next((v for v in cells(name) if not _number_or_empty(v)), None)
        if bad is not None:
            return f"column '{name}': {str(bad)[:40]!r} is not a number"
    return None


def _more(names: list[str]) -> str:
    return f" (and {len(names) - 1} more)" if len(names) > 1 else ""


def _number_or_empty(value: object) -> bool:
    if (
        value is None
        or value == ""
        or (isinstance(value, int | float) and not isinstance(value, bool))
    ):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


Cells = Callable[[str], Iterable[object]]  # a column's cells, by name


def request_columns(body: bytes, content_type: str) -> tuple[list[str], Cells] | None:
    """The column names a request carries and a way to read a column's cells, as MLflow's
    parsers will see them (CSV cells as text), or None. Plain Python for JSON: a single-row
    request must not pay for a DataFrame."""
    if content_type.split(";")[0].strip() == "text/csv":
        try:
            frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
        except (ValueError, pd.errors.ParserError):
            return None
        return [str(c) for c in frame.columns], lambda name: frame[name]
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    split = payload.get("dataframe_split")
    if isinstance(split, dict) and isinstance(split.get("columns"), list):
        names, data = [str(c) for c in split["columns"]], split.get("data") or []
        if not all(isinstance(row, list) and len(row) == len(names) for row in data):
            return None
        return names, lambda name: (row[names.index(name)] for row in data)
    records = payload.get("dataframe_records")
    if isinstance(records, list) and all(isinstance(r, dict) for r in records):
        names = list(dict.fromkeys(str(k) for r in records for k in r))
        return names, lambda name: (r.get(name) for r in records)
    return None


class AliasApp:
    """The ASGI app `assay serve-model` runs: the column check, then the current version."""

    def __init__(self, loaded: Loaded) -> None:
        self.current = loaded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loaded = self.current  # one version per request, even if the alias moves meanwhile
        tagged = _with_version(send, loaded.version)
        if scope["type"] != "http" or scope["path"] != "/invocations":
            await loaded.app(scope, receive, tagged)
            return
        body = await _body(receive)
        headers = dict(scope.get("headers") or [])
        problem = request_problem(body, headers.get(b"content-type", b"").decode(), loaded)
        if problem is not None:
            await _answer(tagged, 400, {"error_code": "BAD_REQUEST", "message": problem})
            return
        await loaded.app(scope, _replay(body), tagged)


def follow_alias(
    app: AliasApp,
    client: MlflowClient,
    name: str,
    alias: str,
    poll_seconds: float,
    stop: threading.Event,
    say: Callable[[str], None] = print,
) -> None:
    """Swap in the version holding `alias` whenever it moves, until `stop` is set."""
    while not stop.wait(poll_seconds):
        try:
            version = str(client.get_model_version_by_alias(name, alias).version)
            if version != app.current.version:
                app.current = load_version(name, version)
                say(f"{name}@{alias} moved to v{version}: now serving it")
        except Exception as exc:  # keep serving the loaded version; say why, try again later
            say(f"{name}@{alias}: still serving v{app.current.version} ({exc})")


def serve_model(
    client: MlflowClient,
    name: str,
    alias: str,
    address: tuple[str, int],
    poll_seconds: float,
    traffic: Path,
) -> None:
    """Serve `name@alias` until Ctrl-C, following the alias (mlflow's tracking URI is set) and
    recording its traffic in `traffic` (unless ASSAY_TRAFFIC already names a folder)."""
    host, port = address
    _check_free(host, port)
    try:
        version = str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        raise AssayError(f"{name} has no version with the alias '{alias}'") from None
    os.environ.setdefault(TRAFFIC_ENV, str(traffic))  # what the served versions see
    app = AliasApp(load_version(name, version))
    stop = threading.Event()
    follower = threading.Thread(
        target=follow_alias,
        args=(app, client, name, alias, poll_seconds, stop),
        name="follow-alias",
        daemon=True,
    )
    follower.start()
    print(f"serving {name}@{alias} (v{version}) at http://{host}:{port}/invocations", flush=True)
    print(f"following {alias}: checked every {poll_seconds:g} s; Ctrl-C stops", flush=True)
    print(f"traffic profiles (for the monitor flow): {os.environ[TRAFFIC_ENV]}", flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        stop.set()


def _check_free(host: str, port: int) -> None:
    """A port already taken is one clear error before anything loads (uvicorn would say so
    only after the model loaded, with its own exit code)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise AssayError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _with_version(send: Send, version: str) -> Send:
    async def tagged(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers") or [])
            message = {**message, "headers": [*headers, (VERSION_HEADER, version.encode())]}
        await send(message)

    return tagged


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _answer(send: Send, status: int, payload: dict) -> None:
    content = json.dumps(payload).encode()
    length = str(len(content)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", length)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
