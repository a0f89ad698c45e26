"""The ops stack end to end: `assay serve` starts a real Prefect server, serves the deployments
and watches the landing folder; files dropped there become ingest runs, enough rows chain into
training, drifted batches raise an alarm, and Ctrl-C stops everything.

One stack serves the module (starting it costs ~20 s); the tests run in file order and build on
each other's data: the schedule, then landing, then training, then drift.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid

import pandas as pd
import pytest

from tests.ops.stack import Stack, adult_lines, write_deployments, write_spec

pytestmark = pytest.mark.ops

MONITOR_EVERY_S = 10
RETRAIN_ROWS = 2500


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ops")
    spec = write_spec(
        folder,
        split={"rule": "random", "test_fraction": 0.25, "validation_fraction": 0.15, "seed": 0},
        monitoring={"retrain_rows": RETRAIN_ROWS, "retrain_on_drift": False},
        label={"allow_unlabelled_batches": True},  # scored by the score deployment
        # a small, short training: the model and its gates are not what this module is about
        profiles={
            "quick": {
                "train_rows": 2000,
                "pretrain": {"epochs": 1},
                "finetune": {"epochs": 2},
                "compression": {
                    "epochs": 1,
                    "pruning": {"enabled": False},
                    "gate": {"min_agreement": 0.5, "max_auc_drop": 1.0, "max_size_ratio": 10},
                },
                "fairness": {"mitigation": "none", "gate": [], "bootstrap": 20},
                "explanations": {"rows": 200},
                "gates": {"quality": {"enabled": False}},
            }
        },
    )

    def short_schedules(deployments: dict) -> None:
        deployments["monitor"]["schedules"] = [{"interval": MONITOR_EVERY_S}]
        deployments["train"]["schedules"] = []
        deployments["score"]["schedules"] = []  # only the trigger

    served = Stack.start(
        folder / "home", spec, write_deployments(folder, short_schedules), "--profile", "quick"
    )
    yield served
    code = served.stop()
    assert code == 0, served.tail()
    assert not served.up(), "the Prefect server outlived assay serve"
    assert "stopping" in served.output()


def test_an_interval_schedule_creates_runs_that_complete(stack):
    def two_scheduled_runs_done() -> list[dict] | None:
        done = [
            r
            for r in stack.finished("monitor")
            if r["auto_scheduled"] and r["state_type"] == "COMPLETED"
        ]
        return done if len(done) >= 2 else None

    runs = stack.wait_for(two_scheduled_runs_done, 120, "two completed scheduled monitor runs")
    assert len(runs) == 2
    monitor = stack.post("/deployments/filter", {"deployments": {"name": {"any_": ["monitor"]}}})
    stack.post(f"/deployments/{monitor[0]['id']}/pause_deployment", {})  # keep the CPU for the rest


def test_a_landed_file_is_ingested_within_30_seconds(stack):
    dropped = dt.datetime.now(dt.UTC)
    path = stack.drop("first.csv", adult_lines(0, 300))
    run = stack.wait_for(lambda: stack.ingests_of(path), 30, "ingest run for first.csv")
    assert len(run) == 1 and run[0]["state_type"] == "COMPLETED"
    started = dt.datetime.fromisoformat(run[0]["start_time"])
    print(f"ingest started {(started - dropped).total_seconds():.1f} s after the drop")
    assert not path.exists(), "an accepted landing file moves to the archive"
    assert len(list((stack.home / "archive").glob("*-first.csv"))) == 1


def test_a_bad_file_ends_in_quarantine_with_its_reason(stack):
    text = adult_lines(300, 50).replace(", Private,", ", Private, extra-column,", 5)
    path = stack.drop("bad.csv", text)
    stack.wait_for(lambda: stack.ingests_of(path), 60, "ingest of bad.csv")
    kept = [p for p in (stack.home / "datasets" / "adult" / "quarantine").rglob("bad.csv")]
    assert len(kept) == 1 and kept[0].read_text(encoding="utf-8") == text
    assert (kept[0].parent / "reason.txt").read_text(encoding="utf-8").strip()


def test_twenty_files_at_once_are_each_processed_exactly_once(stack):
    """Files that land together share ingest runs (one per poll of the landing folder)."""
    paths = [stack.drop(f"part-{i:02d}.csv", adult_lines(400 + 40 * i, 40)) for i in range(20)]
    names = [str(p) for p in paths]

    def ingested() -> list[dict] | None:
        runs = [r for r in stack.finished("ingest") if set(r["parameters"]["paths"]) & set(names)]
        covered = {p for r in runs for p in r["parameters"]["paths"]}
        return runs if covered >= set(names) else None

    runs = stack.wait_for(ingested, 240, "ingest runs covering the 20 files")
    assert sorted(p for r in runs for p in r["parameters"]["paths"]) == names  # each once
    assert {r["state_type"] for r in runs} == {"COMPLETED"}
    print(f"20 files in {len(runs)} ingest run(s)")
    archived = sorted(p.name.split("-", 1)[1] for p in (stack.home / "archive").glob("*-part-*"))
    assert archived == [p.name for p in paths]
    sources = [
        json.loads(p.read_text())["source"]
        for p in (stack.home / "datasets" / "adult" / "store" / "batches").glob("*.json")
    ]
    assert sorted(s for s in sources if s.startswith("part-")) == [p.name for p in paths]


@pytest.fixture(scope="module")
def trained(stack):
    """Enough new rows: ingest asks for a retrain, and the train deployment runs."""
    stack.drop("big.csv", adult_lines(1200, RETRAIN_ROWS))
    stack.wait_for(lambda: stack.events("assay.retrain.requested"), 120, "a retrain request")
    second = {
        "id": str(uuid.uuid4()),
        "occurred": dt.datetime.now(dt.UTC).isoformat(),
        "event": "assay.retrain.requested",
        "resource": {"prefect.resource.id": "assay.dataset.adult"},
        "payload": {"reason": "a second trigger while the first training runs"},
    }
    stack.wait_for(lambda: stack.flow_runs("train"), 60, "a train run")
    stack.post("/events", [second])
    return stack.wait_for(
        lambda: (runs := stack.finished("train")) and len(runs) >= 2 and runs,
        600,
        "two finished train runs",
    )


def test_enough_new_rows_chain_into_training_one_run_at_a_time(trained):
    assert [r["state_type"] for r in trained] == ["COMPLETED", "COMPLETED"]
    first, second = sorted(trained, key=lambda r: r["start_time"])
    assert second["start_time"] >= first["end_time"], "two trainings ran at once"


def shifted(text: str, years: int) -> str:
    """The same rows with every age moved by `years`."""
    rows = [line.split(", ") for line in text.strip().splitlines()]
    return "".join(", ".join([str(int(r[0]) + years), *r[1:]]) + "\n" for r in rows)


def drift_alarms(stack: Stack, name: str) -> list[dict]:
    return [e for e in stack.events("assay.drift.detected") if name in e["payload"]["scope"]]


def test_a_shifted_batch_raises_drift_and_an_unshifted_one_does_not(stack, trained):
    # one after the other: files that land together are checked for drift together
    for name, text in (
        ("calm.csv", adult_lines(6000, 800)),
        ("older.csv", shifted(adult_lines(7000, 800), 15)),
    ):
        path = stack.drop(name, text)
        stack.wait_for(lambda p=path: stack.ingests_of(p), 120, f"ingest of {name}")
    alarm = stack.wait_for(lambda: drift_alarms(stack, "older.csv"), 30, "a drift alarm")
    assert "age" in alarm[0]["payload"]["drifted"]
    assert drift_alarms(stack, "calm.csv") == []


def test_the_monitor_checks_every_batch_since_the_last_training(stack, trained):
    """Run by hand (its schedule is paused): both batches since training, the older ones too."""
    (monitor,) = stack.post("/deployments/filter", {"deployments": {"name": {"any_": ["monitor"]}}})
    run = stack.post(f"/deployments/{monitor['id']}/create_flow_run", {})
    stack.wait_for(
        lambda: [r for r in stack.finished("monitor") if r["id"] == run["id"]], 120, "monitor run"
    )
    alarm = stack.wait_for(
        lambda: drift_alarms(stack, "batch(es) since the last training"), 30, "a monitor alarm"
    )
    assert "age" in alarm[0]["payload"]["drifted"]


def test_monitoring_is_recorded_in_mlflow(stack, trained):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{stack.home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("assay-adult-monitoring")
    runs = client.search_runs([experiment.experiment_id])
    assert any(r.data.metrics.get("drift.psi.age", 0) > 0.2 for r in runs)
    frame = pd.DataFrame([r.data.metrics for r in runs])
    assert {"drift.detected", "rows", "drift.psi.prediction"} <= set(frame.columns)


def test_an_unlabelled_batch_is_scored_once_by_the_champion(stack, trained):
    without_labels = "".join(
        line.rsplit(",", 1)[0] + "\n" for line in adult_lines(9000, 300).splitlines()
    )
    path = stack.drop("tonight.csv", without_labels)
    stack.wait_for(lambda: stack.ingests_of(path), 120, "ingest of tonight.csv")
    runs = stack.wait_for(lambda: stack.finished("score"), 120, "a score run")
    assert [r["state_type"] for r in runs] == ["COMPLETED"]
    (batch,) = runs[0]["parameters"]["batches"]
    scored = list((stack.home / "predictions" / "adult").glob("*.parquet"))
    assert len(scored) == 1 and scored[0].name.startswith(batch[:16] + "-v")
    assert len(pd.read_parquet(scored[0])) == 300


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (make test)")
def test_the_ui_shows_the_train_run_and_its_gate_table(stack, trained, tmp_path):
    """The screenshot script checks the rendered page text for every gate before saving."""
    from deployments.screenshot import main as screenshot

    assert screenshot(["--api", stack.api, "--out", str(tmp_path)]) == 0
    for name in ("prefect-train-run.png", "prefect-gates.png"):
        png = (tmp_path / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 20_000, name
