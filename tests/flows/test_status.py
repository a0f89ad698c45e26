"""`assay status` and the dataset labels on flow runs, on the session's quick Adult run (its
Prefect runs are in the test harness's API, its model in the home's registry)."""

from __future__ import annotations

import json

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.settings import PREFECT_API_URL, temporary_settings

from assay.registry.models import holder
from cli.main import main


@pytest.fixture(scope="module")
def adult_home(quick_adult_run):
    home, _ = quick_adult_run
    return home


def test_every_run_of_assay_run_carries_the_dataset(adult_home):
    """`assay run` started the run flow, and ingest and train under it: all three are
    tagged and named for the dataset."""
    with get_client(sync_client=True) as client:
        tagged = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["dataset:adult"]))
        )
        flows = {client.read_flow(r.flow_id).name for r in tagged}
    assert {"run", "ingest", "train"} <= flows
    assert all(r.name.startswith("adult-") for r in tagged)


def test_status_shows_the_champion_the_last_training_and_no_queue(adult_home, capsys):
    assert main(["status", "--json", "--home", str(adult_home.root)]) == 0
    found = json.loads(capsys.readouterr().out)
    (adult,) = [d for d in found["datasets"] if d["dataset"] == "adult"]
    assert adult["model"] == "assay-adult"
    assert adult["champion"] == holder(adult_home, "assay-adult", "champion")
    assert adult["last_run"]["flow"] == "train"
    assert adult["last_training"]["run"] and adult["batches_since"] == 0
    assert adult["flows"] == []

    assert main(["status", "--home", str(adult_home.root)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("adult  (assay-adult)\n  champion v")
    assert "since then: 0 batch(es), 0 rows" in text


def test_status_without_prefect_still_shows_the_registry_and_says_why(adult_home, capsys):
    dead = {PREFECT_API_URL: "http://127.0.0.1:9/api"}  # nothing listens there
    with temporary_settings(updates=dead):
        code = main(["status", "--json", "--home", str(adult_home.root)])
    found = json.loads(capsys.readouterr().out)
    assert code == 4
    assert "Prefect could not be read at http://127.0.0.1:9/api" in found["prefect"]
    assert found["datasets"][0]["champion"] is not None
