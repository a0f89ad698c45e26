"""Served traffic reaches monitoring as profiles, not rows: the pyfunc model records windows of
what it scored, their pooled values give the drift figures a batch of the same rows gives, and
the monitor flow judges the champion's traffic against its reference profile."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest

from assay.data.fingerprint import file_digest
from assay.monitoring.drift import compare
from assay.monitoring.traffic import served_windows, traffic_drift
from assay.registry.models import download
from assay.registry.tracking import tracking_uri
from assay.serving.layout import MANIFEST_FILE
from assay.serving.predictor import Predictor
from assay.serving.profile import build_profile
from assay.serving.traffic import TRAFFIC_ENV, WINDOW_ROWS, TrafficRecorder, TrafficWindow
from tests.conftest import mixed_rows, mixed_spec_for
from tests.serving.conftest import NAME


def _windows(tmp_path, spec, frame, scores, size):
    recorder = TrafficRecorder(tmp_path / "traffic", spec, "digest")
    for start in range(0, len(frame), size):
        recorder.record(frame.iloc[start : start + size], scores[start : start + size])
    recorder.flush()
    return [TrafficWindow.load(p) for p in sorted((tmp_path / "traffic").glob("*.json"))]


@pytest.mark.parametrize("shift", [0.0, 1.5])
def test_pooled_windows_give_the_figures_of_the_same_rows_as_a_batch(tmp_path, shift):
    spec = mixed_spec_for(tmp_path / "suite.json")
    reference_rows = mixed_rows(3000, 0)
    scores = np.random.default_rng(0).random(3000)
    reference = build_profile(reference_rows, spec, scores)
    served = mixed_rows(2500, 1).assign(x=lambda f: f["x"] + shift)
    served.loc[::97, "x"] = np.nan
    served_scores = np.random.default_rng(1).random(2500) ** (1 + shift)
    windows = _windows(tmp_path, spec, served, served_scores, size=300)
    assert len(windows) == 3 and sum(w.profile.rows for w in windows) == 2500
    pooled = traffic_drift(reference, windows, spec)
    direct = compare(reference, served, spec, served_scores)
    assert pooled.rows == direct.rows
    for a, b in zip(pooled.checks, direct.checks, strict=True):
        assert (a.feature, a.drifted) == (b.feature, b.drifted)
        assert a.psi == pytest.approx(b.psi, abs=1e-9)
        assert a.p_value == pytest.approx(b.p_value, rel=1e-6, abs=1e-12)
    assert pooled.detected is (shift > 0)


def test_a_window_holds_profiles_not_rows(tmp_path):
    spec = mixed_spec_for(tmp_path / "suite.json")
    rows = mixed_rows(WINDOW_ROWS, 2)
    (window,) = _windows(tmp_path, spec, rows, np.full(len(rows), 0.5), size=WINDOW_ROWS)
    raw = json.loads(next((tmp_path / "traffic").glob("*.json")).read_text())
    assert set(raw) == {"package", "started", "ended", "profile"}
    assert "note" not in json.dumps(raw)  # the text column is not profiled, nor kept
    assert list((tmp_path / "traffic").glob("*.parquet")) == []
    assert window.profile.rows == WINDOW_ROWS


def test_the_served_model_records_its_traffic_and_the_monitor_judges_it(
    registered, tmp_path, monkeypatch, prefect_api
):
    from flows.monitor import monitor
    from tests.flows.helpers import wait_for_events

    home, package = registered
    spec = tmp_path / "spec.yaml"
    spec.write_text(Predictor.load(package).spec.model_dump_json(), encoding="utf-8")
    monkeypatch.setenv(TRAFFIC_ENV, str(home.traffic))
    mlflow.set_tracking_uri(tracking_uri(home))
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    shifted = mixed_rows(1200, 7).drop(columns=["y"]).assign(x=lambda f: f["x"] + 3.0)
    model.predict(shifted)  # 1,200 rows at once: one window, written at once
    champion = download(home, NAME, "champion")
    (window,) = served_windows(home.traffic, file_digest(champion / MANIFEST_FILE))
    assert window.profile.rows == 1200

    assert monitor(str(spec), str(home.root)) == "no new batches"  # no batch, but traffic
    alarms = [
        e
        for e in wait_for_events("assay.drift.detected")
        if e.payload["scope"].startswith("served traffic (1 windows")
    ]
    assert alarms and "x" in alarms[0].payload["drifted"]
    runs = mlflow.search_runs(experiment_names=["assay-toy-monitoring"], output_format="list")
    (run,) = [r for r in runs if "traffic.rows" in r.data.metrics]
    assert run.data.metrics["traffic.rows"] == 1200 and run.data.metrics["traffic.drift.detected"]
