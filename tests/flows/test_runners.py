"""The train flow's task runner is chosen when a run starts, from the environment then."""

from __future__ import annotations

from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from flows.runners import ChosenPerRun
from flows.train import train


def test_each_run_gets_the_runner_its_environment_names(monkeypatch):
    assert isinstance(train.task_runner, ChosenPerRun)
    monkeypatch.delenv("ASSAY_TASK_RUNNER", raising=False)
    monkeypatch.delenv("ASSAY_DASK_ADDRESS", raising=False)
    first = train.task_runner.duplicate()
    assert type(first) is ThreadPoolTaskRunner
    monkeypatch.setenv("ASSAY_DASK_ADDRESS", "tcp://scheduler:8786")  # set after the import
    second = train.task_runner.duplicate()
    assert isinstance(second, DaskTaskRunner) and second.address == "tcp://scheduler:8786"
