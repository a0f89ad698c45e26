"""Faults in every stage of train and ingest: transient errors are retried and the run succeeds;
a SIGKILL mid-stage resumes from the cached stages to the same model with one registered
version; an unreachable MLflow store is retried, then named; a full disk loses nothing. The
train faults run on a generated dataset with the tiny model: what is tested is the recovery,
which does not depend on the data or the model's size."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from prefect.states import State

from assay.data.store import BatchStore
from assay.home import Home
from assay.registry import tracking
from flows.ingest import ingest
from flows.train import train
from tests.conftest import ADULT_SPEC, assay_in_process
from tests.flows.helpers import task_runs
from tests.reliability.faults import (
    INJECTED,
    FailOnce,
    always,
    disk_full,
    fail_once,
    run_faulty,
)
from tests.synthetic import LENIENT, edit, write_dataset

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("prefect_api")]

# Stage -> what fails inside it. The train stages before compression fail in the process that
# is then killed in compression; the others fail in the run that resumes it.
BEFORE_KILL = {
    "take-snapshot": "assay.data.snapshot:take_snapshot",
    "load-batches": "assay.data.snapshot:load_batches",
    "data-gate": "assay.stages.data_gate:data_gate",
    "split": "assay.data.split:split_batches",
    "baseline": "assay.stages.baseline:fit_and_score_baseline",
    "pretrain": "assay.modeling.teacher:pretrain_stage",
    "finetune": "assay.modeling.teacher:finetune_stage",
}
KILL_AT = "assay.compression.quantize:quantize"  # distilled and exported, not yet quantized
AFTER_KILL = {
    "compress": "assay.compression.stage:compress_stage",
    "calibrate": "assay.stages.calibrate:calibrate_stage",
    "conformal": "assay.stages.conformal:conformal_stage",
    "fairness": "assay.stages.fairness:fairness_stage",
    "explain": "assay.stages.explain:explain_stage",
    "responsible": "assay.stages.responsible:package_stage",
    "evaluate": "assay.training:evaluate_models",
    "publish-model-card": "assay.registry.card:write_card",
}
# Side effects that complete before the failure (a lost reply): the retry must not repeat them
AFTER_EFFECT = {
    "log-to-mlflow": "assay.registry.tracking:log_run",
    "register-candidate": "assay.registry.models:register",
    "settle-promotion": "assay.registry.promotion:settle",
    "record-training": "assay.monitoring.policy:LastTraining.save",
}


def _versions(home: Home) -> list:
    return MlflowClient(tracking.tracking_uri(home)).search_model_versions("name = 'assay-churn'")


def _finished_runs(home: Home) -> list:
    client = MlflowClient(tracking.tracking_uri(home))
    experiment = client.get_experiment_by_name("assay-churn").experiment_id
    runs = client.search_runs([experiment], filter_string="attributes.status = 'FINISHED'")
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


@dataclass(frozen=True)
class Resumed:
    spec: Path  # a generated dataset with the tiny model (whole runs take seconds)
    home: Home
    batches: list[str]  # accepted before the kill
    after_kill: dict  # what the killed process left
    state: State  # of the train run that resumed
    injected: dict[str, FailOnce]  # in that run
    reference: Home  # an uninterrupted run on the same data


@pytest.fixture(scope="module")
def resumed(prefect_api, tmp_path_factory):
    """An uninterrupted run on a generated dataset; a copy of its accepted batches; `assay run`
    there with a transient fault in each stage up to compression, SIGKILLed inside
    compression; then the train flow again with a transient fault in every later stage."""
    folder = tmp_path_factory.mktemp("faults")
    spec = write_dataset(folder / "churn", spec=LENIENT)
    reference = Home(folder / "reference", "churn")
    code, out = assay_in_process("run", "--home", str(reference.root), "--spec", str(spec))
    assert code == 0, out[-2000:]
    home = Home(folder / "home", "churn")
    shutil.copytree(reference.batches, home.batches)
    batches = sorted(r.hash for r in BatchStore(home.batches).records())
    faults = [a for target in BEFORE_KILL.values() for a in ("--fail-once", target)]
    code, output = run_faulty(
        ["run", "--home", str(home.root), "--spec", str(spec)],
        [*faults, "--kill-at", KILL_AT],
        folder / "killed.log",
    )
    after_kill = {
        "returncode": code,
        "output": output,
        "versions": len(_versions(home)),
        "batches": sorted(r.hash for r in BatchStore(home.batches).records()),
    }
    patch = pytest.MonkeyPatch()
    injected = {stage: fail_once(patch, target) for stage, target in AFTER_KILL.items()}
    injected |= {
        stage: fail_once(patch, target, after=True) for stage, target in AFTER_EFFECT.items()
    }
    try:
        state = train(str(spec), str(home.root), return_state=True)
    finally:
        patch.undo()
    return Resumed(spec, home, batches, after_kill, state, injected, reference)


def test_a_kill_mid_stage_leaves_no_version_and_no_partial_batch(resumed):
    after_kill = resumed.after_kill
    assert after_kill["returncode"] == -signal.SIGKILL, after_kill["output"][-2000:]
    assert f"SIGKILL in {KILL_AT}" in after_kill["output"]
    for target in BEFORE_KILL.values():  # each failed once and was retried past
        assert f"{INJECTED} in {target}" in after_kill["output"]
    assert after_kill["versions"] == 0
    assert after_kill["batches"] == resumed.batches


def test_the_rerun_resumes_from_cached_stages_to_the_same_model(resumed):
    home, result = resumed.home, resumed.state.result()
    assert {"pretrain", "finetune"} <= set(result.cached)
    assert "compress" not in result.cached
    [version] = _versions(home)
    assert version.tags["assay.fingerprint"] == result.fingerprint
    assert "champion" in result.promotion
    # byte for byte the model that an uninterrupted run on the same batches ships
    shipped = Path(result.student).relative_to(home.root) / "model.int8.onnx"
    assert (home.root / shipped).read_bytes() == (resumed.reference.root / shipped).read_bytes()


def test_a_transient_fault_in_every_later_stage_is_retried(resumed):
    runs = task_runs(resumed.state)
    for stage, fault in resumed.injected.items():
        assert fault.failed, f"{stage}: the fault was never reached"
        assert runs[stage].state.name == "Completed", stage
        assert runs[stage].run_count == 2, stage
    assert len(_finished_runs(resumed.home)) == 1  # the lost reply did not log a second run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mlflow_server(port: int, folder: Path) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--default-artifact-root", (folder / "artifacts").as_uri(), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


@pytest.fixture
def server_store(monkeypatch):
    """Point the flows at a tracking server on a free port (not started yet); MLflow's own
    client retries three times per request, quickly, so the task's retries are what is measured."""
    port = _free_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    return port


def test_a_store_down_for_a_while_is_retried_and_the_run_succeeds(resumed, server_store, tmp_path):
    home = resumed.home
    started: list[subprocess.Popen] = []
    later = threading.Timer(2, lambda: started.append(_mlflow_server(server_store, tmp_path)))
    later.start()
    try:
        state = train(str(resumed.spec), str(home.root), return_state=True)
        result = state.result()
        assert started, "the server was never started"
        assert task_runs(state)["log-to-mlflow"].run_count >= 2
        assert not result.reused_run and len(_versions(home)) == 1
    finally:
        later.cancel()
        for process in started:
            process.terminate()
            process.wait(30)


def test_a_store_that_stays_down_fails_with_a_clear_message(resumed, server_store):
    home = resumed.home
    began = time.monotonic()
    state = train(str(resumed.spec), str(home.root), return_state=True)
    assert state.is_failed()
    with pytest.raises(
        tracking.StoreUnreachable,
        match=r"MLflow tracking store http://127\.0\.0\.1:\d+ is unreachable \(connection refused\)",
    ):
        state.result()  # fmt: skip
    assert task_runs(state)["log-to-mlflow"].run_count == 4
    assert time.monotonic() - began < 120


def test_a_full_disk_under_the_mlflow_artifacts_fails_cleanly_then_recovers(resumed, monkeypatch):
    """A new candidate (a registry setting changed; every stage cached) meets a full disk when
    its artifacts are logged: retried, then failed; no version and no finished run appear."""
    home = resumed.home
    spec = edit(
        resumed.spec,
        resumed.spec.with_name("margin.yaml"),
        {"registry": {"promotion_margin": 0.01}},
    )
    before = len(_versions(home))
    repository = "mlflow.store.artifact.local_artifact_repo:LocalArtifactRepository"
    always(monkeypatch, f"{repository}.log_artifacts", disk_full)
    always(monkeypatch, f"{repository}.log_artifact", disk_full)
    state = train(str(spec), str(home.root), return_state=True)
    assert state.is_failed()
    with pytest.raises(OSError, match="No space left on device"):
        state.result()
    assert task_runs(state)["log-to-mlflow"].run_count == 4
    assert len(_versions(home)) == before
    monkeypatch.undo()  # space freed
    result = train(str(spec), str(home.root))
    assert len(_versions(home)) == before + 1 and "version 2" in result.registered


def _landed(home: Home, name: str, text: str) -> Path:
    home.landing.mkdir(parents=True, exist_ok=True)
    path = home.landing / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_transient_fault_in_every_ingest_stage_is_retried(home, adult_lines, monkeypatch):
    good = _landed(home, "good.csv", "\n".join(adult_lines[:200]) + "\n")
    bad = _landed(home, "bad.csv", "\n".join(adult_lines[:5]) + "\n1, 2, 3\n")
    faults = {
        "parse-file": fail_once(monkeypatch, "assay.data.reader:read_batch"),
        "validate-batch": fail_once(monkeypatch, "assay.validation.check:check"),
        "accept-batch": fail_once(monkeypatch, "pandas:DataFrame.to_parquet", error=disk_full),
        "quarantine-file": fail_once(monkeypatch, "assay.data.store:Quarantine.put"),
        "record-outcome": fail_once(monkeypatch, "assay.registry.audit:AuditLog.append"),
    }
    state = ingest([str(good), str(bad)], str(ADULT_SPEC), str(home.root), return_state=True)
    outcomes = state.result()
    assert [o.status for o in outcomes] == ["accepted", "quarantined"]
    runs = task_runs(state)
    for stage, fault in faults.items():
        assert fault.failed and runs[stage].run_count == 2, stage
    assert len(BatchStore(home.batches).records()) == 1
    assert not list(home.landing.iterdir())
    assert not [p for p in home.batches.rglob("*") if p.name.startswith(".tmp-")]


def test_a_full_disk_in_the_batch_store_keeps_the_file_in_landing(home, adult_lines, monkeypatch):
    text = "\n".join(adult_lines[:200]) + "\n"
    path = _landed(home, "good.csv", text)
    always(monkeypatch, "pandas:DataFrame.to_parquet", disk_full)
    state = ingest([str(path)], str(ADULT_SPEC), str(home.root), return_state=True)
    with pytest.raises(OSError, match=r"disk full: no space left to write .*batches"):
        state.result()
    assert path.read_text(encoding="utf-8") == text  # still waiting, intact
    assert BatchStore(home.batches).records() == []
    assert not [p for p in home.batches.rglob("*") if p.is_file()]  # no partial batch
    monkeypatch.undo()
    [outcome] = ingest([str(path)], str(ADULT_SPEC), str(home.root))
    assert outcome.status == "accepted" and not path.exists()


def test_a_kill_while_a_batch_is_written_loses_nothing(home, adult_lines):
    text = "\n".join(adult_lines[:200]) + "\n"
    path = _landed(home, "good.csv", text)
    code, output = run_faulty(
        ["ingest", "--home", str(home.root), "--spec", str(ADULT_SPEC), str(path)],
        ["--kill-at", "pandas:DataFrame.to_parquet"],
        home.root.parent / "killed.log",
    )
    assert code == -signal.SIGKILL, output
    assert path.read_text(encoding="utf-8") == text
    assert BatchStore(home.batches).records() == []
    [outcome] = ingest([str(path)], str(ADULT_SPEC), str(home.root))
    assert outcome.status == "accepted"
    assert len(BatchStore(home.batches).records()) == 1 and not path.exists()
