"""Benchmark: what serving the champion costs over the bare model. In one run, on the home's
champion (`assay run` first) and the spec's test rows:

- HTTP: `mlflow models serve` (and `assay serve-model`, its column checks in front) answering
  single-row requests (p50/p95 ms) and 256-row requests (rows/s), one client at a time
- pyfunc in process: `mlflow.pyfunc.load_model(...).predict` on 4,096 raw rows at a time
- `assay predict` on the test file end to end, start-up included

each beside a bare onnxruntime session running the same rows already encoded (single rows,
batches of 256 and of 4,096), so the overhead is a ratio measured on the same machine at the
same moment. The last line printed is JSON.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd

from assay.compression.timing import latency_ms, onnx_runner, throughput
from assay.config import Spec, load_spec
from assay.errors import AssayError
from assay.home import Home
from assay.registry.models import CHAMPION, download, holder
from assay.registry.tracking import tracking_uri
from assay.serving.layout import MODEL_FILE, TOKENIZER_DIR
from assay.serving.pyfunc import raw_example
from assay.serving.scorer import OnnxScorer
from bench.quality import spec_split
from deployments.stack import wait_until_up

BIN = Path(sys.executable).parent
SINGLE_ROWS = 300  # requests timed for the latency percentiles
SECONDS = 3.0  # per throughput measurement
JSON = {"Content-Type": "application/json"}


def main(spec_path: str, profile: str | None = None) -> int:
    spec = load_spec(spec_path, profile)
    home = Home.from_env().for_dataset(spec.name)
    name = spec.registered_name
    version = holder(home, name, CHAMPION) if (home.root / "mlflow.db").is_file() else None
    if version is None:
        raise AssayError(f"{home.root} has no champion of {name}: run `assay run` first")
    package = download(home, name, CHAMPION)
    test = spec_split(spec).test.reset_index(drop=True)
    rows = raw_example(test, spec, count=len(test))
    bare = _bare(OnnxScorer.load(package / MODEL_FILE, package / TOKENIZER_DIR), test)
    uri = f"models:/{name}@{CHAMPION}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(home), "PATH": _path()}
    result = {
        "bench": "serving",
        "model": f"{name} v{version}",
        "cores": os.cpu_count(),
        "test_rows": len(test),
        "bare_onnxruntime": bare,
        "mlflow_models_serve": _http(
            ["mlflow", "models", "serve", "-m", uri, "--env-manager", "local", "-w", "1"],
            rows,
            env,
        ),
        "assay_serve_model": _http(
            ["assay", "serve-model", "--spec", spec_path, "--home", str(home.root)], rows, env
        ),
        "pyfunc_in_process": _pyfunc(uri, home, rows),
        "assay_predict": _predict(spec_path, spec, home, env, len(test)),
    }
    result["ratios"] = _ratios(result)
    print(json.dumps(result))
    return 0


def _path() -> str:
    """MLflow starts `uvicorn` from PATH: this environment's first."""
    return f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"


def _bare(scorer: OnnxScorer, test: pd.DataFrame) -> dict[str, float]:
    """The int8 session alone, with the same threads as the served one (all cores), on the
    test rows encoded beforehand."""
    encoded = scorer.tokenizer.encode(test)
    run = onnx_runner(scorer.session)
    p50, p95 = latency_ms(run, encoded, SINGLE_ROWS)
    return {
        "p50_ms_single_row": round(p50, 3),
        "p95_ms_single_row": round(p95, 3),
        "rows_per_s_batch_256": round(throughput(run, encoded, 256, SECONDS)),
        "rows_per_s_batch_4096": round(throughput(run, encoded, 4096, SECONDS)),
    }


def _http(command: list[str], rows: pd.DataFrame, env: dict[str, str]) -> dict[str, float]:
    """Start the server, time single-row and 256-row requests from one client, stop it."""
    port = _free_port()
    command = [str(BIN / command[0]), *command[1:], "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(f"{url}/ping", process, " ".join(command[:3]))
            with httpx.Client(base_url=url, timeout=60) as client:
                return _requests(client, rows)
        finally:
            process.terminate()
            process.wait(timeout=60)


def _requests(client: httpx.Client, rows: pd.DataFrame) -> dict[str, float]:
    """Bodies are built before the clock starts: only the request and its answer are timed."""

    def body(part: pd.DataFrame) -> bytes:
        split = part.to_dict(orient="split")
        payload = {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}
        return json.dumps(payload).encode()

    def post(content: bytes) -> None:
        answer = client.post("/invocations", content=content, headers=JSON)
        if answer.status_code != 200:
            raise AssayError(f"the server answered {answer.status_code}: {answer.text[:300]}")

    singles = [body(rows.iloc[[i % len(rows)]]) for i in range(SINGLE_ROWS + 20)]
    for one in singles[:20]:
        post(one)
    times = []
    for one in singles[20:]:
        started = time.perf_counter()
        post(one)
        times.append((time.perf_counter() - started) * 1000)
    batch, done = body(rows.head(256)), 0
    started = time.perf_counter()
    while time.perf_counter() - started < SECONDS:
        post(batch)
        done += 256
    return {
        "p50_ms_single_row": round(float(np.percentile(times, 50)), 3),
        "p95_ms_single_row": round(float(np.percentile(times, 95)), 3),
        "rows_per_s_batch_256": round(done / (time.perf_counter() - started)),
    }


def _pyfunc(uri: str, home: Home, rows: pd.DataFrame) -> dict[str, float]:
    mlflow.set_tracking_uri(tracking_uri(home))
    model = mlflow.pyfunc.load_model(uri)
    batch = pd.concat([rows] * (4096 // len(rows) + 1), ignore_index=True).head(4096)
    model.predict(batch)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < SECONDS:
        model.predict(batch)
        done += len(batch)
    return {"rows_per_s_batch_4096": round(done / (time.perf_counter() - started))}


def _predict(
    spec_path: str, spec: Spec, home: Home, env: dict[str, str], rows: int
) -> dict[str, float]:
    """`assay predict --model champion` on the spec's test file, in a process of its own."""
    tests = [p for p in spec.bundled if any(p.match(t) for t in spec.split.test_sources)]
    if not tests:
        return {"skipped": "the spec names no test file (split.test_sources)"}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "scored.parquet"
        command = [str(BIN / "assay"), "predict", "--spec", spec_path, "--home", str(home.root)]
        command += ["--model", CHAMPION, str(tests[0]), "--out", str(out)]
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "rows_per_s_with_startup": round(rows / seconds)}


def _ratios(result: dict) -> dict[str, float]:
    """How many times the bare session each path is (latency up, throughput down)."""
    bare, served = result["bare_onnxruntime"], result["mlflow_models_serve"]
    strict = result["assay_serve_model"]
    out = {
        "http_p50_over_bare": served["p50_ms_single_row"] / bare["p50_ms_single_row"],
        "http_256_bare_over_served": bare["rows_per_s_batch_256"] / served["rows_per_s_batch_256"],
        "serve_model_p50_over_mlflow": strict["p50_ms_single_row"] / served["p50_ms_single_row"],
        "pyfunc_4096_bare_over_pyfunc": bare["rows_per_s_batch_4096"]
        / result["pyfunc_in_process"]["rows_per_s_batch_4096"],
    }
    if "rows_per_s_with_startup" in result["assay_predict"]:
        out["predict_bare_over_end_to_end"] = (
            bare["rows_per_s_batch_4096"] / result["assay_predict"]["rows_per_s_with_startup"]
        )
    return {k: round(v, 2) for k, v in out.items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
