"""The stage table and the cache it keys: sections checked against the spec, every cached
task a stage with JSON results, no pickle left by a run, and a stage whose folder is gone
computed again (only that one)."""

from __future__ import annotations

import base64
import inspect
import os
import shutil
from pathlib import Path

import pytest
from prefect import Task

import tasks.train
from assay.config import Spec
from assay.errors import SpecError
from assay.pipeline.compose import responsible_steps
from assay.pipeline.stages import STAGES, TABLE, Stage, check_sections
from tests.conftest import ADULT_SPEC, assay_in_process

# A pickle stream starts with PROTO (0x80) and its protocol; inside JSON, Prefect would hold
# it base64-encoded, where protocols 2-5 start with these letters.
PICKLE_STARTS = tuple(bytes([0x80, p]) for p in range(2, 6))
PICKLE_IN_BASE64 = tuple(base64.b64encode(s)[:3] for s in PICKLE_STARTS)


def pickles_under(*roots: Path) -> list[str]:
    found = []
    for root in roots:
        for path in (p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            if data.startswith(PICKLE_STARTS) or any(b'"' + m in data for m in PICKLE_IN_BASE64):
                found.append(str(path))
    return found


def test_a_misspelt_section_is_refused_by_name():
    planted = (*TABLE, Stage("again", ("finetuning", "model", "fairness.min_groups"), print, dict))
    with pytest.raises(
        SpecError, match=r"stage again: \['fairness.min_groups', 'finetuning'\] are not sections"
    ):
        check_sections(planted, Spec.model_fields)


def test_every_stage_is_one_cached_task_of_its_name_with_json_results():
    found = {t.name: t for t in vars(tasks.train).values() if isinstance(t, Task)}
    for stage in TABLE:
        task = found[stage.name]
        assert task.result_serializer == "json", stage.name
        assert task.cache_policy is not None and "CacheKeyFnPolicy" in repr(task.cache_policy)
    cached = {name for name, t in found.items() if t.result_serializer == "json"}
    assert cached == {*STAGES, "evaluate"}  # evaluation is cached by the snapshot alone


def test_a_run_leaves_no_pickle_and_a_deleted_stage_folder_is_computed_again(quick_adult_run):
    home, _ = quick_adult_run
    results = Path(os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"])
    assert pickles_under(home.root, results) == []
    assert list(results.iterdir()), "the cached stages left result records"

    (folder,) = (home.namespace / "stages" / "calibrate").iterdir()
    shutil.rmtree(folder)
    code, out = assay_in_process(
        "run", "--home", str(home.root), "--spec", str(ADULT_SPEC), "--profile", "quick"
    )
    assert code == 0
    reused = next(line for line in out.splitlines() if "Cached stages reused" in line)
    assert reused.split(": ", 1)[1].split(", ") == [
        s.name for s in TABLE[1:] if s.name != "calibrate"
    ]
    assert folder.is_dir()
    assert "(already registered)" in out


def test_flow_and_benchmark_compose_the_responsible_steps_alike():
    """One composition (`responsible_steps`): each step it names is a stage whose task and
    library function both take exactly the inputs the composition hands them."""
    calls: list[tuple[str, int]] = []

    def record(name: str, *inputs: object) -> str:
        calls.append((name, len(inputs)))
        return name

    assert responsible_steps(record, "compressed") == "responsible"
    assert [name for name, _ in calls] == [s.name for s in TABLE[5:]]
    for name, given in calls:
        task = tasks.train.STAGE_TASKS[name]
        # the task: (key, home, data, spec, *inputs); the library: (split, spec, folder, *inputs)
        assert len(inspect.signature(task.fn).parameters) == 4 + given, name
        assert len(inspect.signature(STAGES[name].function).parameters) == 3 + given, name


def test_each_stage_task_calls_the_function_the_table_names():
    assert set(tasks.train.STAGE_TASKS) == set(STAGES)
    for name, task in tasks.train.STAGE_TASKS.items():
        # the names the task's body reads (its own name is not among them)
        assert STAGES[name].function.__name__ in task.fn.__code__.co_names, name
