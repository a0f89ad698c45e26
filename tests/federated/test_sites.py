"""A federation as it runs: a real Prefect server, each site an `assay site` process (its own
home, work pool and worker), and the coordinator an `assay run` process whose every file open
is recorded: it must open nothing in a site's home, and the sites' rounds must train the
teacher that the usual chain compresses, assesses and registers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from prefect.settings import PREFECT_API_URL

from tests.flows.test_datasets import ASSAY, ROOT
from tests.synthetic import LENIENT, write_dataset

pytestmark = pytest.mark.slow

SITES = {"north": (1, 1500), "south": (2, 900)}
SITE_SPEC = {"split": {"rule": "random", "validation_fraction": 0.2}, "bundled": []}

# The coordinator, with an audit hook that records each file it opens under the sites' homes
WATCHED = """
import atexit, json, os, sys
watched = json.loads(os.environ["WATCH"])
opened = {"site": [], "own_batches": 0}
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if any(path.startswith(w) for w in watched):
            opened["site"].append(path)
        elif "/store/batches/" in path:
            opened["own_batches"] += 1
sys.addaudithook(hook)
atexit.register(lambda: open(os.environ["OPENED"], "w").write(json.dumps(opened)))
from cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def env_for(home: Path, api: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    return env | {
        "ASSAY_PROGRESS": "0",
        "ASSAY_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_HOME": str(home / "prefect"),
    }


@pytest.fixture
def federation(tmp_path, prefect_api):
    api = PREFECT_API_URL.value()
    workers, homes = [], {}
    for site, (seed, n) in SITES.items():
        spec = write_dataset(tmp_path / site, n=n, seed=seed, spec={**LENIENT, **SITE_SPEC})
        homes[site] = tmp_path / f"{site}-home"
        env = env_for(homes[site], api)
        ingest = [str(ASSAY), "ingest", "--spec", str(spec), str(spec.parent / "train.csv")]
        done = subprocess.run(ingest, env=env, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        log = (tmp_path / f"{site}.log").open("w")
        command = [str(ASSAY), "site", "--name", site, "--spec", str(spec)]
        workers.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log))
    yield api, homes
    for worker in workers:
        worker.terminate()
        worker.wait(timeout=60)


def test_sites_train_the_teacher_and_the_coordinator_opens_none_of_their_files(
    tmp_path, federation
):
    api, homes = federation
    # two rounds on a few hundred rows: what is judged here is where rows are read, not quality
    federated = {
        "federation": {"sites": list(SITES), "rounds": 2},
        "gates": {"quality": {"enabled": False}},
    }
    spec = write_dataset(tmp_path / "coordinator", n=800, seed=0, spec=federated)
    home = tmp_path / "coordinator-home"
    env = env_for(home, api) | {
        "WATCH": json.dumps([str(h.resolve()) for h in homes.values()]),
        "OPENED": str(tmp_path / "opened.json"),
    }
    command = [sys.executable, "-c", WATCHED, "run", "--spec", str(spec)]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    logs = "".join((tmp_path / f"{s}.log").read_text()[-1500:] for s in SITES)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:] + logs
    opened = json.loads((tmp_path / "opened.json").read_text())
    assert opened["site"] == []
    assert opened["own_batches"] > 0  # the hook sees the coordinator read its own batches
    assert "federation round 2 (train): every site answered" in done.stdout + done.stderr
    federation = re.search(
        r"- Federation: 2 sites \(north ([\d,]+) rows, south ([\d,]+) rows\)", done.stdout
    )
    assert federation, done.stdout[-3000:]

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    (version,) = client.search_model_versions("name='assay-churn'")
    assert version.tags["assay.federation.sites"] == "north,south"
    assert version.tags["assay.federation.rounds"] == "3"  # two trained, one scoring the last
