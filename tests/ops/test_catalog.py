"""deployments/prefect.yaml read into the deployments `assay serve` serves: a template filled
in once per dataset, as `prefect deploy` fills it."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import yaml

from assay.errors import SpecError
from deployments.catalog import DEPLOYMENTS_FILE, runner_deployments, schedule, trigger

PARAMETERS = {"spec_path": "/data/spec.yaml", "home": "/srv/assay", "profile": "quick"}
FLOWS = {"ingest", "train", "monitor", "score", "rollback"}


@pytest.fixture(scope="module")
def served():
    return {d.flow_name: d for d in runner_deployments("adult", PARAMETERS)}


def test_every_flow_is_deployed_under_its_dataset_name_and_tag(served):
    assert set(served) == FLOWS
    assert {d.name for d in served.values()} == {"adult"}  # ingest/adult, train/adult, ...
    assert all(d.tags == ["dataset:adult"] for d in served.values())


def test_each_dataset_gets_its_own_deployments_and_exact_triggers():
    other = runner_deployments("churn", {**PARAMETERS, "spec_path": "/data/churn.yaml"})
    assert {(d.flow_name, d.name) for d in other} == {(f, "churn") for f in FLOWS}
    for deployment in other:
        assert deployment.parameters["spec_path"] == "/data/churn.yaml"
        for t in deployment.triggers:
            assert t.match.model_dump()["prefect.resource.id"] == "assay.dataset.churn"


def test_filling_the_template_leaves_the_environment_as_it_was(monkeypatch):
    monkeypatch.setenv("ASSAY_DATASET", "someone-elses")
    monkeypatch.delenv("ASSAY_SPEC", raising=False)
    runner_deployments("adult", PARAMETERS)
    assert os.environ["ASSAY_DATASET"] == "someone-elses" and "ASSAY_SPEC" not in os.environ


def test_a_deployment_not_named_after_its_dataset_is_refused(tmp_path):
    raw = yaml.safe_load(DEPLOYMENTS_FILE.read_text(encoding="utf-8"))
    raw["deployments"][1]["name"] = "train"  # the fixed names of earlier versions
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(SpecError, match=r"flows/train\.py:train is named 'train', not after"):
        runner_deployments("adult", PARAMETERS, path)


def test_ingest_starts_on_each_landed_file_with_that_file(served):
    (arrived,) = served["ingest"].triggers
    assert arrived.expect == {"assay.data.arrived"}
    assert arrived.match.model_dump()["prefect.resource.id"] == "assay.dataset.adult"
    assert arrived.parameters == {"paths": "{{ event.payload.paths }}", "confine": True}
    assert served["ingest"].parameters == {"spec_path": "/data/spec.yaml", "home": "/srv/assay"}


def test_train_runs_nightly_and_on_request_one_at_a_time(served):
    train = served["train"]
    (nightly,) = train.schedules
    assert nightly.schedule.cron == "0 2 * * *"
    (requested,) = train.triggers
    assert requested.expect == {"assay.retrain.requested"}
    assert train.concurrency_limit == 1
    assert train.concurrency_options.collision_strategy.value == "ENQUEUE"
    assert train.parameters["profile"] == "quick"  # only the flows that take it get it


def test_score_runs_on_unlabelled_batches_and_hourly(served):
    (announced,) = served["score"].triggers
    assert announced.expect == {"assay.data.unlabelled"}
    assert announced.parameters == {"batches": "{{ event.payload.batches }}"}
    (hourly,) = served["score"].schedules
    assert hourly.schedule.cron == "30 * * * *"
    assert served["score"].parameters == {"spec_path": "/data/spec.yaml", "home": "/srv/assay"}


def test_monitor_runs_hourly(served):
    (hourly,) = served["monitor"].schedules
    assert hourly.schedule.interval == timedelta(hours=1)


def test_schedules_and_triggers_come_from_the_file(tmp_path):
    raw = yaml.safe_load(DEPLOYMENTS_FILE.read_text(encoding="utf-8"))
    raw["deployments"] = [d for d in raw["deployments"] if d["entrypoint"].endswith(":monitor")]
    raw["deployments"][0]["schedules"] = [{"interval": 5}, {"cron": "*/5 * * * *", "active": False}]
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    (monitor,) = runner_deployments("adult", PARAMETERS, path)
    every_5s, cron = monitor.schedules
    assert every_5s.schedule.interval == timedelta(seconds=5)
    assert cron.schedule.cron == "*/5 * * * *" and cron.active is False


@pytest.mark.parametrize(
    ("build", "raw", "message"),
    [
        (schedule, {"every": 5}, "give `cron` or `interval`"),
        (trigger, {"type": "compound", "triggers": []}, "only `type: event` triggers"),
    ],
)
def test_unsupported_entries_are_refused_by_name(build, raw, message):
    with pytest.raises(SpecError, match=message):
        build(raw)


def test_an_unreadable_file_is_one_clear_error(tmp_path):
    path = tmp_path / "prefect.yaml"
    path.write_text("name: assay\n", encoding="utf-8")
    with pytest.raises(SpecError, match="no readable `deployments:` list"):
        runner_deployments("adult", PARAMETERS, path)
