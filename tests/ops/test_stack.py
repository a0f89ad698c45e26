"""The ops stack end to end, for two datasets with different schemas on one server: `assay
serve` starts a real Prefect server, serves each dataset's deployments and watches each landing
folder; files dropped there become that dataset's ingest runs, enough rows chain into training,
drifted batches raise an alarm, a second `assay serve` adds a third dataset beside the running
ones, re-serving keeps their schedules, and Ctrl-C stops everything.

One stack serves the module (starting it costs ~20 s); the tests run in file order and build on
each other's data: the schedule, then landing, then training, then drift, status, and the stack
growing by a dataset.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tasks.concurrency import dataset_limit
from tests.ops.stack import ASSAY, ROOT, Stack, adult_lines, write_deployments, write_spec
from tests.synthetic import TINY, write_dataset
from tests.synthetic import rows as synthetic_rows

pytestmark = pytest.mark.ops

MONITOR_EVERY_S = 10
RETRAIN_ROWS = 2500
FLOWS = ("ingest", "train", "monitor", "score", "rollback")
# The synthetic datasets' trainings: tiny networks, no gate that could stop them
TINY_QUICK = {
    "model": TINY["model"],
    "pretrain": {"epochs": 1, "batch_size": 64},
    "finetune": {"epochs": 2, "patience": 1, "batch_size": 64, "lora_r": 4, "lora_alpha": 8},
    "compression": {
        "student": TINY["compression"]["student"],
        "epochs": 1,
        "batch_size": 64,
        "pruning": {"enabled": False},
        "gate": {"min_agreement": 0.5, "max_auc_drop": 1.0, "max_size_ratio": 10,
                 "max_latency_ms": 100.0},
    },
    "fairness": {"mitigation": "none", "gate": [], "bootstrap": 20},
    "explanations": {"rows": 100},
    "gates": {"quality": {"enabled": False}},
}  # fmt: skip


def synthetic_spec(folder: Path, name: str, rename: dict[str, str]) -> Path:
    """A generated dataset of its own schema, trained only when asked (no retrain by rows)."""
    return write_dataset(
        folder / name,
        name=name,
        rename=rename,
        spec={
            "bundled": [],
            "split": {"rule": "random", "test_fraction": 0.25, "validation_fraction": 0.15},
            "monitoring": {"retrain_rows": 10**9, "retrain_on_drift": False},
            "profiles": {"quick": TINY_QUICK},
        },
    )


def synthetic_csv(n: int, seed: int, rename: dict[str, str] | None = None) -> str:
    frame = synthetic_rows(n, positive_share=0.3, signal=2.0, seed=seed).rename(
        columns=rename or {}
    )
    return frame.to_csv(index=False)


LOANS = {"income_k": "salary_k", "region": "branch"}  # the third dataset's schema


def served_deployments(stack: Stack, dataset: str) -> dict[str, dict]:
    return {flow: stack.deployment(flow, dataset) for flow in FLOWS}


def short_schedules(deployments: dict) -> None:
    deployments["monitor"]["schedules"] = [
        {"interval": MONITOR_EVERY_S, "anchor_date": "2026-01-01T00:00:00+00:00"}
    ]
    deployments["train"]["schedules"] = []
    deployments["score"]["schedules"] = []  # only the trigger


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("ops")


@pytest.fixture(scope="module")
def specs(folder):
    """adult, churn (another schema) and loans (a third, added to the running stack later)."""
    adult = write_spec(
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
    churn = synthetic_spec(folder, "churn", {})
    return {"adult": adult, "churn": churn, "loans": synthetic_spec(folder, "loans", LOANS)}


def stops_cleanly(served: Stack) -> None:
    """Ctrl-C: exit 0, and the server it started is gone with it."""
    code = served.stop()
    assert code == 0, served.tail()
    assert not served.up(), "the Prefect server outlived assay serve"
    assert "stopping" in served.output()


@pytest.fixture(scope="module")
def stack(folder, specs):
    """adult and churn from one `assay serve`, the default training cap (1 on 2 cores)."""
    served = Stack.start(
        folder / "home",
        [specs["adult"], specs["churn"]],
        write_deployments(folder, short_schedules),
        "--profile",
        "quick",
    )
    yield served
    if served.process.poll() is None:  # the module's last tests stop it themselves
        stops_cleanly(served)


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
    for dataset in ("adult", "churn"):  # keep the CPU for the rest
        monitor = stack.deployment("monitor", dataset)
        stack.post(f"/deployments/{monitor['id']}/pause_deployment", {})


def test_each_dataset_is_served_under_its_own_names_tags_and_triggers(stack):
    for dataset in ("adult", "churn"):
        deployments = served_deployments(stack, dataset)
        for flow, deployment in deployments.items():
            assert deployment["tags"] == [f"dataset:{dataset}"], flow
            assert deployment["parameters"]["spec_path"].endswith(f"{dataset}.yaml") or (
                dataset == "adult" and deployment["parameters"]["spec_path"].endswith("spec.yaml")
            )
        triggers = [
            a["trigger"]
            for d in deployments.values()
            for a in stack.get(f"/automations/related-to/prefect.deployment.{d['id']}")
        ]
        assert len(triggers) == 3  # ingest, train, score
        for t in triggers:
            assert t["match"]["prefect.resource.id"] == f"assay.dataset.{dataset}"


def test_a_landed_file_is_ingested_within_30_seconds(stack):
    dropped = dt.datetime.now(dt.UTC)
    path = stack.drop("first.csv", adult_lines(0, 300))
    run = stack.wait_for(lambda: stack.ingests_of(path), 30, "ingest run for first.csv")
    assert len(run) == 1 and run[0]["state_type"] == "COMPLETED"
    started = dt.datetime.fromisoformat(run[0]["start_time"])
    print(f"ingest started {(started - dropped).total_seconds():.1f} s after the drop")
    assert not path.exists(), "an accepted landing file moves to the archive"
    assert len(list((stack.home / "archive" / "adult").glob("*-first.csv"))) == 1
    assert run[0]["name"].startswith("adult-") and "dataset:adult" in run[0]["tags"]


def test_a_file_in_each_landing_folder_reaches_its_own_dataset_only(stack):
    """Dropped at once: one ingest run each, of its own deployment; nothing of one dataset in
    the other's store, archive, quarantine or audit log."""
    paths = {
        "adult": stack.drop("twin.csv", adult_lines(300, 100)),
        "churn": stack.drop("twin.csv", synthetic_csv(1600, seed=5), dataset="churn"),
    }
    for dataset, path in paths.items():
        (run,) = stack.wait_for(
            lambda p=path, d=dataset: stack.ingests_of(p, d), 60, f"{dataset} ingest"
        )
        assert run["state_type"] == "COMPLETED"
        assert run["deployment_id"] == stack.deployment("ingest", dataset)["id"]
        assert run["parameters"]["paths"] == [str(path)]
    namespaces = stack.home / "datasets"
    churn_columns = {"income_k", "tenure", "region", "home_owner", "churned"}
    for batch in (namespaces / "churn" / "store" / "batches").glob("*.parquet"):
        assert set(pd.read_parquet(batch).columns) >= churn_columns - {"churned"}
    for batch in (namespaces / "adult" / "store" / "batches").glob("*.parquet"):
        assert not churn_columns & set(pd.read_parquet(batch).columns)
    archived = sorted(p.parent.name for p in (stack.home / "archive").rglob("*-twin.csv"))
    assert archived == ["adult", "churn"]
    for dataset in ("adult", "churn"):
        assert not list((namespaces / dataset / "quarantine").rglob("twin.csv"))
        audit = namespaces / dataset / "store" / "audit.jsonl"
        assert not audit.exists() or "twin.csv" not in audit.read_text(encoding="utf-8")


def test_a_file_outside_every_datasets_folder_is_named_and_left_alone(stack):
    stray = stack.home / "landing" / "old-layout.csv"
    stray.write_text(adult_lines(0, 5), encoding="utf-8")
    stack.wait_for(
        lambda: f"{stray} is in no served dataset's folder" in stack.output(), 30, "a warning"
    )
    assert stray.exists()
    stray.unlink()


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
    archived = sorted(
        p.name.split("-", 1)[1] for p in (stack.home / "archive" / "adult").glob("*-part-*")
    )
    assert archived == [p.name for p in paths]
    sources = [
        json.loads(p.read_text())["source"]
        for p in (stack.home / "datasets" / "adult" / "store" / "batches").glob("*.json")
    ]
    assert sorted(s for s in sources if s.startswith("part-")) == [p.name for p in paths]


def retrain_request(dataset: str, reason: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "occurred": dt.datetime.now(dt.UTC).isoformat(),
        "event": "assay.retrain.requested",
        "resource": {"prefect.resource.id": f"assay.dataset.{dataset}"},
        "payload": {"reason": reason},
    }


def finished_trainings(stack: Stack, wanted: dict[str, int]) -> dict[str, list[dict]] | None:
    """Each dataset's finished train runs, once every one has at least as many as wanted."""
    runs = {dataset: stack.finished("train", dataset) for dataset in wanted}
    return runs if all(len(runs[d]) >= n for d, n in wanted.items()) else None


@pytest.fixture(scope="module")
def trained(stack):
    """Enough new rows: adult's ingest asks for a retrain, and train/adult runs; churn is asked
    to retrain at the same moment, and adult once more while its first training runs."""
    stack.drop("big.csv", adult_lines(1200, RETRAIN_ROWS))
    stack.wait_for(lambda: stack.events("assay.retrain.requested"), 120, "a retrain request")
    stack.post("/events", [retrain_request("churn", "at the same time as adult")])
    stack.wait_for(lambda: stack.flow_runs("train"), 60, "a train run")
    stack.post("/events", [retrain_request("adult", "a second trigger while the first runs")])
    return stack.wait_for(
        lambda: finished_trainings(stack, {"adult": 2, "churn": 1}), 900, "three finished trainings"
    )


def test_enough_new_rows_chain_into_training_one_run_at_a_time(trained):
    assert [r["state_type"] for r in trained["adult"]] == ["COMPLETED", "COMPLETED"]
    first, second = sorted(trained["adult"], key=lambda r: r["start_time"])
    assert second["start_time"] >= first["end_time"], "two trainings of adult ran at once"


def test_a_retrain_request_starts_its_own_datasets_training_only(stack, trained):
    """Two requests for adult made two adult trainings, one for churn one: none crossed over."""
    assert len(trained["adult"]) == 2 and len(trained["churn"]) == 1
    for dataset, runs in trained.items():
        own = stack.deployment("train", dataset)["id"]
        assert {r["deployment_id"] for r in runs} == {own}
        assert all(r["name"].startswith(f"{dataset}-") for r in runs)
    assert trained["churn"][0]["state_type"] == "COMPLETED"


def test_under_the_default_cap_the_datasets_train_one_after_the_other(stack, trained):
    """One training at a time over both datasets on this machine (--max-trainings default)."""
    held = sorted(stack.held_slot(r) for runs in trained.values() for r in runs)
    for (_, ended), (started, _) in itertools.pairwise(held):
        assert started >= ended, f"trainings overlapped: {held}"


def shifted(text: str, years: int) -> str:
    """The same rows with every age moved by `years`."""
    rows = [line.split(", ") for line in text.strip().splitlines()]
    return "".join(", ".join([str(int(r[0]) + years), *r[1:]]) + "\n" for r in rows)


def drift_alarms(stack: Stack, name: str) -> list[dict]:  # adult's
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
    monitor = stack.deployment("monitor", "adult")
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


def status_json(stack: Stack, *extra: str) -> dict:
    """`assay status --json` against the running server, as an operator's script calls it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    done = subprocess.run(
        [str(ASSAY), "status", "--json", "--home", str(stack.home), *extra],
        env=env | {"PREFECT_API_URL": stack.api},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_status_lists_both_datasets_with_their_champions(stack, trained):
    import mlflow

    found = {d["dataset"]: d for d in status_json(stack)["datasets"]}
    assert set(found) == {"adult", "churn"}
    registry = mlflow.MlflowClient(f"sqlite:///{stack.home / 'mlflow.db'}")
    for dataset, status in found.items():
        champion = registry.get_model_version_by_alias(f"assay-{dataset}", "champion")
        assert status["champion"] == str(champion.version)
        assert status["last_run"]["flow"] == "train" and status["last_run"]["state"] == "Completed"
        assert status["last_training"]["version"] is not None
    assert "tonight.csv" in found["adult"]["last_drift"]["scope"]  # its latest accepted file
    assert found["adult"]["batches_since"] >= 2


def test_a_second_serve_adds_a_dataset_and_leaves_the_others_as_they_were(stack, specs):
    """A second `assay serve` for loans against the running server: the stack grows by a
    dataset while adult and churn keep being served by the first; stopping it pauses only
    loans' deployments (Prefect's runner pauses what it served when it stops)."""
    before = {d: served_deployments(stack, d) for d in ("adult", "churn")}
    (train,) = stack.post("/flows/filter", {"flows": {"name": {"any_": ["train"]}}})
    legacy = stack.post("/deployments/", {"name": "train", "flow_id": train["id"]})  # old naming
    second = Stack.start(
        stack.home,
        specs["loans"],
        write_deployments(stack.home.parent, short_schedules),
        "--profile",
        "quick",
        api=stack.api,
    )
    path = second.drop("first.csv", synthetic_csv(1600, seed=7, rename=LOANS), dataset="loans")
    second.wait_for(lambda: second.ingests_of(path, "loans"), 60, "loans ingest")
    assert "warning: deployment train/train is from an earlier assay" in second.output()
    httpx.delete(f"{stack.api}/deployments/{legacy['id']}", timeout=10).raise_for_status()
    assert second.stop() == 0, second.tail()
    assert stack.up(), "stopping the second serve stopped the first's server"
    assert [r["state_type"] for r in stack.finished("ingest", "loans")] == ["COMPLETED"]
    assert all(d["paused"] for d in served_deployments(stack, "loans").values())
    for dataset, deployments in before.items():
        for flow, old in deployments.items():
            now = stack.deployment(flow, dataset)
            assert (now["id"], now["updated"], now["paused"]) == (
                old["id"],
                old["updated"],
                old["paused"],
            ), f"{flow}/{dataset}"
    # the first process still serves its own: an adult file is ingested
    path = stack.drop("still-served.csv", adult_lines(10000, 50))
    stack.wait_for(lambda: stack.ingests_of(path), 60, "an adult ingest after loans joined")


@pytest.fixture(scope="module")
def reserved(stack, folder, specs):
    """Ctrl-C, then `assay serve` again with all three specs and room for two trainings; a
    run denied a slot retries within a second (Prefect's default waits up to 30 s)."""
    before = {d: served_deployments(stack, d) for d in ("adult", "churn")}
    stops_cleanly(stack)
    served = Stack.start(
        stack.home,
        [specs["adult"], specs["churn"], specs["loans"]],
        write_deployments(folder, short_schedules),
        "--profile",
        "quick",
        "--max-trainings",
        "2",
        env={"PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS": "1"},
    )
    yield served, before
    stops_cleanly(served)


def test_reserving_with_one_spec_more_keeps_the_others_deployments_and_schedules(reserved):
    served, before = reserved
    for dataset, deployments in before.items():
        for flow, old in deployments.items():
            new = served.deployment(flow, dataset)
            assert new["id"] == old["id"], f"{flow}/{dataset} was replaced"
            assert [s["schedule"] for s in new["schedules"]] == [
                s["schedule"] for s in old["schedules"]
            ]
            assert new["paused"] is False, f"{flow}/{dataset} not resumed"
    assert set(served_deployments(served, "loans")) == set(FLOWS)
    cap = served.post("/v2/concurrency_limits/filter", {})
    limits = {c["name"]: c["limit"] for c in cap}
    assert limits["assay-train"] == 2
    assert {limits[f"assay-train-{d}"] for d in ("adult", "churn", "loans")} == {1}
    for dataset in ("adult", "churn", "loans"):  # resumed, every 10 s: keep the CPU
        monitor = served.deployment("monitor", dataset)
        served.post(f"/deployments/{monitor['id']}/pause_deployment", {})


def waiting_for_slots(stack: Stack, before: dict[str, int]) -> bool:
    """Each dataset has a train run more than `before`, and every running one has printed
    that it waits for its training slot."""
    runs = {d: stack.flow_runs("train", d) for d in before}
    if any(len(runs[d]) <= n for d, n in before.items()):
        return False
    running = {r["id"] for d in runs for r in runs[d] if r["state_type"] == "RUNNING"}
    body = {"logs": {"flow_run_id": {"any_": sorted(running)}}, "limit": 200}
    waiting = {
        log["flow_run_id"]
        for log in stack.post("/logs/filter", body)
        if log["message"].startswith("waiting for a training slot")
    }
    return len(running) == len(before) and waiting == running


def test_with_two_slots_two_datasets_train_at_once(reserved):
    """The test holds each dataset's own slot until both runs wait for theirs, then lets go:
    with two slots of the cap both take one at once (with one, the second would wait for the
    first to end). Churn lands new rows first, so neither training is a short all-cached one."""
    served, _ = reserved
    path = served.drop("more.csv", synthetic_csv(400, seed=11), dataset="churn")
    served.wait_for(lambda: served.ingests_of(path, "churn"), 60, "churn ingest")
    before = {d: len(served.finished("train", d)) for d in ("churn", "loans")}
    own = {"names": [dataset_limit(d) for d in before], "slots": 1, "mode": "concurrency"}
    served.post("/v2/concurrency_limits/increment", own)
    try:
        served.post("/events", [retrain_request(d, "both at once") for d in before])
        served.wait_for(lambda: waiting_for_slots(served, before), 300, "both waiting for slots")
    finally:
        served.post("/v2/concurrency_limits/decrement", own)
    runs = served.wait_for(
        lambda: finished_trainings(served, {d: n + 1 for d, n in before.items()}),
        600,
        "a finished training of churn and of loans",
    )
    (churn, loans) = (served.held_slot(runs[d][-1]) for d in ("churn", "loans"))
    assert max(churn[0], loans[0]) < min(churn[1], loans[1]), f"no overlap: {churn} {loans}"
    failed = [served.why(runs[d][-1]) for d in runs if runs[d][-1]["state_type"] != "COMPLETED"]
    assert not failed, "\n".join(failed)


def test_prefect_deploy_makes_the_deployments_assay_serve_serves(reserved, folder):
    """The production path from the same template: `prefect deploy` with the dataset in the
    environment, against the same server; compared with what `assay serve` made for churn."""
    served, _ = reserved
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env |= {"PREFECT_API_URL": served.api, "ASSAY_CHECKOUT": str(ROOT)}
    prefect = str(Path(ASSAY).with_name("prefect"))
    run = lambda *a, **e: subprocess.run(  # noqa: E731
        [prefect, *a], env=env | e, capture_output=True, text=True, timeout=180, cwd=ROOT
    )
    made = run("work-pool", "create", "assay", "--type", "process")
    assert made.returncode == 0, made.stdout + made.stderr
    # the module's own copy of the template (its schedules are the served ones)
    deploy = "--all", "--prefect-file", str(folder / "prefect.yaml")
    done = run("--no-prompt", "deploy", *deploy, ASSAY_DATASET="churn-prod", ASSAY_SPEC="spec.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    for flow in FLOWS:
        prod, local = served.deployment(flow, "churn-prod"), served.deployment(flow, "churn")
        assert prod["work_pool_name"] == "assay" and prod["tags"] == ["dataset:churn-prod"]
        assert prod["parameters"] == {"spec_path": "spec.yaml"}
        assert [s["schedule"] for s in prod["schedules"]] == [
            s["schedule"] for s in local["schedules"]
        ]
        assert prod["concurrency_limit"] == local["concurrency_limit"]
        triggers = {
            (
                a["trigger"]["match"]["prefect.resource.id"],
                json.dumps(a["actions"][0].get("parameters")),
            )
            for a in served.get(f"/automations/related-to/prefect.deployment.{prod['id']}")
        }
        expected = {
            (
                t["trigger"]["match"]["prefect.resource.id"].replace("churn", "churn-prod"),
                json.dumps(t["actions"][0].get("parameters")),
            )
            for t in served.get(f"/automations/related-to/prefect.deployment.{local['id']}")
        }
        assert triggers == expected, flow
