"""`mlflow models serve` on the registered version, as a real process: the three request
formats give the same predictions, and a bad request is a 4xx naming the column."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from assay.registry.models import CHAMPION, Submission, client, register
from assay.registry.tracking import tracking_uri
from assay.serving.policy import DecisionPolicy
from assay.serving.predictor import Predictor
from tests.conftest import mixed_rows
from tests.ops.stack import free_port
from tests.serving.conftest import NAME, run_id

MLFLOW = Path(sys.executable).with_name("mlflow")


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no answer from {url}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def served(registered, tmp_path_factory):
    home, package = registered
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    # MLflow starts `uvicorn` from PATH: the venv's bin, as an activated venv has it
    path = f"{MLFLOW.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(home), "PATH": path}
    command = [str(MLFLOW), "models", "serve", "-m", f"models:/{NAME}@champion"]
    command += ["--env-manager", "local", "-p", str(port), "-h", "127.0.0.1", "-w", "1"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url, process, log)
        yield url, package, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _post(url: str, body: str | dict, content_type: str = "application/json") -> httpx.Response:
    if isinstance(body, dict):
        return httpx.post(f"{url}/invocations", json=body, timeout=30)
    return httpx.post(
        f"{url}/invocations", content=body, headers={"Content-Type": content_type}, timeout=30
    )


def test_a_label_column_is_ignored_not_refused(served):
    url, *_ = served
    rows = mixed_rows(5, 3)  # with the label column y
    answer = _post(url, {"dataframe_records": rows.to_dict(orient="records")})
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 5


def test_three_formats_give_the_same_predictions(served):
    url, package, _ = served
    rows = mixed_rows(40, 8).drop(columns=["y"])
    expected = Predictor.load(package).predict(rows)
    split = rows.to_dict(orient="split")
    answers = [
        _post(url, {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}),
        _post(url, {"dataframe_records": rows.to_dict(orient="records")}),
        _post(url, rows.to_csv(index=False), "text/csv"),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        got = answer.json()["predictions"]
        probability = np.array([r["probability"] for r in got])
        assert np.abs(probability - expected["probability"].to_numpy()).max() <= 1e-6
        assert [r["prediction"] for r in got] == expected["prediction"].tolist()


@pytest.mark.parametrize(
    ("change", "column"),
    [
        (lambda rows: rows.drop(columns=["colour"]), "colour"),
        (lambda rows: rows.assign(x=["many"] + ["1.5"] * (len(rows) - 1)), "x"),
        (lambda rows: rows.assign(shoe_size=42), "unknown column 'shoe_size'"),
    ],
    ids=["missing", "wrong-type", "unknown"],
)
def test_a_bad_request_is_a_4xx_naming_the_column(served, change, column):
    url, _, process = served
    rows = change(mixed_rows(3, 2).drop(columns=["y"]))
    answer = _post(url, {"dataframe_records": rows.to_dict(orient="records")})
    assert 400 <= answer.status_code < 500
    assert column in answer.json()["message"]
    assert process.poll() is None


ASSAY = Path(sys.executable).with_name("assay")


@pytest.fixture(scope="module")
def strict(registered, tmp_path_factory):
    """`assay serve-model` on the champion, checking the alias every second."""
    home, package = registered
    folder = tmp_path_factory.mktemp("strict")
    spec = folder / "spec.yaml"
    spec.write_text(Predictor.load(package).spec.model_dump_json(), encoding="utf-8")
    port, log = free_port(), folder / "serve-model.log"
    command = [str(ASSAY), "serve-model", "--spec", str(spec), "--home", str(home.root)]
    command += ["--port", str(port), "--poll-seconds", "1"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url, process, log)
        yield url, home, package, process, log
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: rows.drop(columns=["colour"]), "missing column 'colour'"),
        (lambda rows: rows.assign(x=["many"] * len(rows)), "column 'x': 'many' is not a number"),
        (lambda rows: rows.assign(shoe_size=42), "unknown column 'shoe_size'"),
    ],
    ids=["missing", "wrong-type", "unknown"],
)
def test_serve_model_refuses_a_bad_request_in_one_line(strict, change, message):
    url, *_, process, _ = strict
    rows = change(mixed_rows(3, 2).drop(columns=["y"]))
    for answer in (
        _post(url, {"dataframe_records": rows.to_dict(orient="records")}),
        _post(url, rows.to_csv(index=False), "text/csv"),
    ):
        assert answer.status_code == 400
        text = answer.json()["message"]
        assert message in text and "\n" not in text
    assert process.poll() is None


def test_serve_model_ignores_the_label_column(strict):
    url, *_ = strict
    rows = mixed_rows(4, 3)
    answer = _post(url, rows.to_csv(index=False), "text/csv")
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 4


def test_serve_model_follows_the_alias_without_a_restart(strict, tmp_path):
    url, home, package, process, log = strict
    rows = mixed_rows(30, 4).drop(columns=["y"])
    body = {"dataframe_records": rows.to_dict(orient="records")}
    first = _post(url, body)
    assert first.status_code == 200 and first.headers["x-assay-model-version"] == "1"
    # version 2: the same model with a threshold that calls every row positive
    second = tmp_path / "v2"
    shutil.copytree(package, second)
    DecisionPolicy(temperature=1.5, threshold=0.0).save(second)
    identity = {"assay.fingerprint": "f2", "assay.spec_digest": "s", "assay.code": "c"}
    candidate = register(home, NAME, run_id(home), Submission(second, mixed_rows(4, 9), identity))
    client(home).set_registered_model_alias(NAME, CHAMPION, candidate.version)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = _post(url, body)
        if answer.headers["x-assay-model-version"] == "2":
            break
        time.sleep(0.5)
    assert answer.headers["x-assay-model-version"] == "2", log.read_text()[-2000:]
    assert {r["prediction"] for r in answer.json()["predictions"]} == {"yes"}
    assert "moved to v2" in log.read_text() and process.poll() is None
