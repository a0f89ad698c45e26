"""The stage table and the cache it keys: sections checked against the spec, every cached
task a stage with JSON results, no pickle left by a run, and a stage whose folder is gone
computed again (only that one)."""

from __future__ import annotations

import base64
import inspect
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from prefect import Task, flow

import tasks.stages
import tasks.train
from assay.config import Spec
from assay.errors import SpecError
from assay.home import Home
from assay.pipeline.compose import run_stages, stages_after
from assay.stages import compress
from assay.stages.stage import Markdown, Stage
from assay.stages.table import STAGES, TABLE, check_table
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
    planted = (
        *TABLE,
        Stage("again", ("finetuning", "model", "fairness.min_groups"), (), print, dict),
    )
    with pytest.raises(
        SpecError, match=r"stage again: \['fairness.min_groups', 'finetuning'\] are not sections"
    ):
        check_table(planted, Spec.model_fields)


def test_an_input_that_is_not_an_earlier_stage_is_refused():
    planted = (Stage("early", (), ("responsible",), print, dict), *TABLE)
    with pytest.raises(
        SpecError, match=r"stage early: its inputs \['responsible'\] are not stages"
    ):
        check_table(planted, Spec.model_fields)


def test_every_stage_is_one_cached_task_of_its_name_with_json_results():
    found = {t.name: t for t in vars(tasks.train).values() if isinstance(t, Task)}
    found |= tasks.stages.STAGE_TASKS
    assert set(tasks.stages.STAGE_TASKS) == set(STAGES)
    for stage in TABLE:
        task = found[stage.name]
        assert task.result_serializer == "json", stage.name
        assert task.cache_policy is not None and "CacheKeyFnPolicy" in repr(task.cache_policy)
    cached = {name for name, t in found.items() if t.result_serializer == "json"}
    assert cached == {*STAGES, "evaluate"}  # evaluation is cached by the snapshot alone


@dataclass(frozen=True)
class Counted:
    """A toy stage's outcome."""

    folder: str
    rows: int


def _count(folder: Path, split: object, spec: Spec, before: Counted | None = None) -> Counted:
    folder.mkdir(parents=True, exist_ok=True)
    return Counted(str(folder), len(split) + (before.rows if before else 0))


def test_a_toy_stage_runs_through_the_factory_and_the_composition(tmp_path, prefect_api):
    """A stage is its table entry: the task factory makes its cached task, the composition feeds
    it the outcome of its input, and its reports are published."""
    first = Stage("toy-first", ("model",), (), _count, Counted)
    second = Stage(
        "toy-second",
        ("model",),
        ("toy-first",),
        _count,
        Counted,
        reports=lambda o: [Markdown("toy", f"{o.rows} rows")],
    )
    check_table((first, second), Spec.model_fields)
    home = Home(tmp_path, "toy")

    @flow
    def toy() -> dict[str, Counted]:
        def submit(stage: Stage, *inputs: object) -> object:
            return tasks.stages.stage_task(stage).submit(
                stage.name, home, ([1, 2, 3], None, *inputs)
            )

        return {name: f.result() for name, f in run_stages(submit, (first, second), {}).items()}

    done = toy()
    assert done["toy-second"].rows == 6
    assert Path(done["toy-second"].folder) == home.stage_dir("toy-second", "toy-second")
    assert Path(done["toy-first"].folder).is_dir()


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


def test_the_steps_after_compression_take_what_their_functions_take():
    """The benchmarks' composition (`responsible_stage`) and the flow run the same table: each
    stage after compression is handed (folder, split, spec) and its inputs' outcomes."""

    after = stages_after(compress.NAME)
    assert [s.name for s in after] == [s.name for s in TABLE[5:]]
    for stage in after:
        parameters = inspect.signature(stage.run).parameters.values()
        variadic = any(p.kind is p.VAR_POSITIONAL for p in parameters)
        assert variadic or len(parameters) == 3 + len(stage.inputs), stage.name
