"""The main job through Prefect on the full bundled Adult data: quality, MLflow, caching.

The tests share the session's quick run (`first_run`) and some add candidates to its home, so
each one reads the first run by its identity (version 1's MLflow run) and states what it
changes relative to what it found: every test passes alone and in any order."""

from __future__ import annotations

import json
import time

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
    FlowRunFilterTags,
)

from assay.errors import GateFailed
from assay.home import Home
from assay.registry.audit import AuditLog
from assay.stages.table import STAGES
from cli.main import main
from flows.train import train
from tests.conftest import ADULT_SPEC
from tests.flows.helpers import (
    adult_variant,
    artifacts_by_key,
    events,
    task_runs,
    wait_for_events,
    wider_promotion_margin,
)

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture(scope="module")
def first_run(quick_adult_run):
    return quick_adult_run


def _first(home: Home):
    """The session's first training run: the one version 1 was registered from."""
    client = MlflowClient(home.mlflow_uri)
    return client.get_run(client.get_model_version("assay-adult", "1").run_id)


def _versions(home: Home) -> int:
    return len(MlflowClient(home.mlflow_uri).search_model_versions("name = 'assay-adult'"))


def _runs(home: Home, nested: bool = False):
    """The training (parent) runs, or with nested=True the per-stage runs under them."""
    client = MlflowClient(home.mlflow_uri)
    experiment = client.get_experiment_by_name("assay-adult")
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if ("mlflow.parentRunId" in r.data.tags) == nested]


def test_run_reaches_published_baseline_quality_on_adult_test(first_run):
    home, _ = first_run
    run = _first(home)
    metrics = run.data.metrics
    assert metrics["baseline.test.rows"] == metrics["teacher.test.rows"] == 16281
    assert metrics["student_int8.test.rows"] == 16281 and metrics["compress.agreement"] >= 0.98
    # The quick profile's reference learns from the teacher's 6,000 rows (README: 0.9144, the
    # full profile's 0.926 on every training row)
    assert metrics["baseline.test.accuracy"] >= 0.85
    assert metrics["baseline.test.roc_auc"] >= 0.905
    # and what ships is not shown below it (the quality gate passed: the run exited 0)
    assert metrics["student_int8.test.roc_auc_high"] >= metrics["baseline.test.roc_auc"]
    # The quick profile's teacher is small and trained on a subsample: it must learn, no more.
    assert metrics["teacher.test.roc_auc"] >= 0.8
    # The ensemble the student learnt from is weighted on validation rows: never far below its
    # best member on the test rows
    assert metrics["ensemble.test.roc_auc"] >= metrics["baseline.test.roc_auc"] - 0.005
    for model in ("teacher", "ensemble", "student_int8", "baseline"):
        for metric in ("accuracy", "roc_auc", "pr_auc", "log_loss", "brier"):
            low, high = (
                metrics[f"{model}.test.{metric}_low"],
                metrics[f"{model}.test.{metric}_high"],
            )
            assert low <= metrics[f"{model}.test.{metric}"] <= high
    assert 0 < metrics["finetune.trainable_fraction"] < 1


def test_mlflow_run_holds_params_datasets_and_artifacts(first_run):
    home, _ = first_run
    run = _first(home)
    assert run.data.params["split.test"] == "16281"
    assert (
        run.data.params["finetune.method"] == "lora" and run.data.tags["assay.profile"] == "quick"
    )
    client = MlflowClient(home.mlflow_uri)
    curve = client.get_metric_history(run.info.run_id, "finetune.valid_auc")
    assert [m.step for m in curve] == list(range(1, len(curve) + 1)) and len(curve) >= 1
    assert run.data.tags["assay.gate.data"] == "passed"
    assert len(run.data.tags["assay.fingerprint"]) == 64
    contexts = {i.tags[0].value for i in run.inputs.dataset_inputs}
    assert contexts == {"training", "testing"}
    assert all(i.dataset.digest for i in run.inputs.dataset_inputs)
    mlflow.set_tracking_uri(home.mlflow_uri)
    names = {a.path for a in MlflowClient(home.mlflow_uri).list_artifacts(run.info.run_id)}
    assert {
        "data-gate.html",
        "metrics.json",
        "spec.json",
        "baseline",
        "finetune",
        "compress",
    } <= names
    assert run.data.tags["assay.gate.compression"] == "passed"
    student = {a.path for a in client.list_artifacts(run.info.run_id, "compress")}
    assert {
        "compress/model.int8.onnx",
        "compress/spec.json",
        "compress/gate.json",
        "compress/pruning.json",
        "compress/unpruned",
    } <= student
    logged = run.data.metrics
    assert logged["compress.pruning.params_after"] < logged["compress.pruning.params_before"]
    assert run.data.tags["assay.gate.fairness"] == "passed"
    assert run.data.tags["assay.mitigation"] == "equalized_odds"
    assert logged["calibrate.ece_after"] <= 0.05
    assert abs(logged["conformal.empirical_coverage"] - 0.9) <= 0.03
    eo = logged["fairness.sex.equalized_odds_difference"]
    assert logged["fairness.sex.equalized_odds_difference_low"] <= eo <= 0.1
    assert "fairness.sex_x_race.demographic_parity_difference" in logged
    shipped = {a.path for a in client.list_artifacts(run.info.run_id, "responsible")}
    assert {
        "responsible/decision.json",
        "responsible/model.int8.onnx",
        "responsible/reliability.png",
        "responsible/mitigation-tradeoff.png",
        "responsible/importance.png",
        "responsible/dependence.png",
        "responsible/groups-sex.png",
    } <= shipped
    teacher = {a.path for a in client.list_artifacts(run.info.run_id, "finetune")}
    assert {"finetune/model.safetensors", "finetune/adapter", "finetune/tokenizer"} <= teacher
    assert str(home.root) in run.info.artifact_uri
    assert run.data.tags["prefect.flow_run_id"]
    stages = {
        r.data.tags["mlflow.runName"]: r
        for r in _runs(home, nested=True)
        if r.data.tags["mlflow.parentRunId"] == run.info.run_id
    }
    # A nested run per stage of the table, named as the stage, holding its figures only
    assert set(stages) == set(STAGES)
    for name, nested in stages.items():
        assert all(k.startswith(f"{name}.") for k in nested.data.metrics), name
    assert set(logged) == {
        *(k for r in stages.values() for k in r.data.metrics),
        *(k for k in logged if k.split(".")[0] in {"teacher", "ensemble", "student_int8"}),
    }
    assert "finetune.seconds" in stages["finetune"].data.metrics
    assert "fairness.sex.equalized_odds_difference" in stages["fairness"].data.metrics
    assert stages["data-gate"].data.metrics["data-gate.passed"] == 1.0
    assert stages["compress"].data.metrics["compress.size.model.int8.onnx"] > 0
    plots = {a.path for a in client.list_artifacts(stages["responsible"].info.run_id, "plots")}
    assert {"plots/importance.png", "plots/dependence.png"} <= plots
    adapter = client.list_artifacts(stages["finetune"].info.run_id, "adapter")
    assert {a.path for a in adapter} >= {"adapter/adapter_model.safetensors"}


def test_output_tells_the_user_where_to_look(first_run):
    home, output = first_run
    assert f"mlflow ui --backend-store-uri {home.mlflow_uri}" in output
    assert "data-gate.html" in output and "Validation reports:" in output
    metrics = json.loads(next((home.namespace / "runs").glob("*/metrics.json")).read_text())
    assert metrics["split"]["test"] == 16281
    assert set(metrics["test"]) == {"teacher", "ensemble", "student_int8", "baseline"}
    assert "Compression gate: passed (5 checks)" in output
    assert "Student pruning: heads 2->1, feed-forward units 64->32" in output
    assert "Fairness gate: passed (1 checks)" in output
    assert "Registered: assay-adult version 1; champion when settled: every gate passed" in output
    assert "Registry now: champion version 1, challenger version 1 of assay-adult" in output


def test_the_model_card_is_rendered_from_the_logged_figures(first_run):
    home, _ = first_run
    run = _first(home)
    logged = run.data.metrics
    html = next((home.namespace / "runs").glob("*/model-card/model-card.html")).read_text()
    assert html.startswith("<!doctype html>") and "<table>" in html
    for figure in (
        logged["student_int8.test.roc_auc"],
        logged["student_int8.test.roc_auc_low"],
        logged["baseline.test.accuracy"],
        logged["calibrate.ece_after"],
        logged["conformal.empirical_coverage"],
        logged["fairness.sex.equalized_odds_difference"],
        logged["fairness.sex_x_race.demographic_parity_difference"],
    ):
        assert f"{figure:.4f}" in html, figure
    for section in ("Intended use", "Limitations", "Gate decisions", "Explanations", "Fairness"):
        assert f"<h2>{section}" in html
    assert '<img src="groups-sex.png"' in html
    assert "Coverage and review share per group" in html and "calibration rows" in html
    # what it was judged against and what it learnt from
    assert "The reference is the best of the reference family" in html
    assert f"{logged['ensemble.test.roc_auc']:.4f}" in html
    assert "distilled from an ensemble of the fine-tuned teacher and the reference family" in html
    # the same per-group coverage in Prefect, as a table artifact of the train flow run
    [table, *_] = artifacts_by_key("conformal-coverage")
    groups = {(row["feature"], row["group"]) for row in json.loads(table.data)}
    assert {("sex", "Female"), ("sex", "Male"), ("sex x race", "Female x White")} <= groups
    registry = MlflowClient(home.mlflow_uri)
    version = registry.get_model_version("assay-adult", "1")
    assert version.description.startswith("# Model card: assay-adult version 1")
    card = {a.path for a in registry.list_artifacts(run.info.run_id, "model-card")}
    assert {"model-card/model-card.html", "model-card/model-card.md"} <= card
    assert version.tags["assay.model_card"] == "model-card/model-card.html"
    assert version.tags["assay.fingerprint"] == run.data.tags["assay.fingerprint"]
    package = {a.path for a in registry.list_artifacts(run.info.run_id, "package")}
    assert {
        "package/model.int8.onnx",
        "package/decision.json",
        "package/tokenizer",
        "package/adapter",
        "package/reports",
    } <= package
    gates = {k: v for k, v in version.tags.items() if k.startswith("assay.gate.")}
    names = ("data", "leakage", "quality", "compression", "fairness", "decision")
    assert gates == {f"assay.gate.{name}": "passed" for name in names}


def test_second_run_reuses_cached_stages_and_logs_nothing_new(first_run):
    home, _ = first_run
    logged, versions = len(_runs(home)), _versions(home)
    audited = len(AuditLog(home.audit).entries())
    state = train(str(ADULT_SPEC), str(home.root), "quick", return_state=True)
    result = state.result()
    assert result.reused_run
    stages = ["baseline", "pretrain", "finetune", "compress"]
    stages += ["calibrate", "conformal", "fairness", "explain", "responsible"]
    assert result.cached == stages
    assert f"Cached stages reused: {', '.join(stages)}" in result.summary()
    runs = task_runs(state)
    for name in ("data-gate", *stages):
        assert runs[name].state.name == "Cached", name
    assert len(_runs(home)) == logged
    assert "Registered: assay-adult version 1 (already registered)" in result.summary()
    assert _versions(home) == versions
    # about version 1 only: after other candidates took an alias, settling v1 again moves it
    assert {e.version for e in AuditLog(home.audit).entries()[audited:]} <= {"1"}


def test_data_gate_rechecks_the_snapshot_with_the_current_suite(first_run, tmp_path):
    home, _ = first_run
    suite = json.loads((ADULT_SPEC.parent.parent / "expectations" / "adult.json").read_text())
    suite["expectations"].append(
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "age", "max_value": 60},
         "severity": "critical", "meta": {}}
    )  # fmt: skip
    (tmp_path / "strict.json").write_text(json.dumps(suite))
    spec = yaml.safe_load(ADULT_SPEC.read_text())
    spec["expectations"] = str(tmp_path / "strict.json")
    spec["bundled"] = []
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump(spec))
    before = len(_runs(home))
    with pytest.raises(GateFailed, match=r"data gate: failed critical expectation: column 'age'"):
        train(str(tmp_path / "strict.yaml"), str(home.root))
    assert len(_runs(home)) == before
    last = AuditLog(home.audit).entries()[-1]
    assert last.action == "gate-failed" and "data gate: failed critical expectation" in last.reason
    deadline = time.monotonic() + 20  # events reach the API's store shortly after
    while not any("data gate" in e.payload.get("reason", "") for e in events("assay.gate.failed")):
        assert time.monotonic() < deadline, "no assay.gate.failed event for the data gate"
        time.sleep(0.5)


def test_empty_store_fails_fast_without_retrying(tmp_path):
    state = train(str(ADULT_SPEC), str(tmp_path / "empty"), return_state=True)
    assert state.is_failed()
    with pytest.raises(GateFailed, match="no accepted batches"):
        state.result()
    assert task_runs(state)["take-snapshot"].run_count == 1


def test_a_failing_fairness_limit_fails_the_run_and_names_it(first_run, tmp_path):
    """Only the fairness step and the package rerun (their settings changed); the run is
    logged, failed."""
    home, _ = first_run

    def strict(spec: dict) -> None:
        spec["profiles"]["quick"]["fairness"]["gate"] = [
            {"feature": "sex", "metric": "equalized_odds_difference", "limit": 0.0}
        ]

    path = adult_variant(tmp_path / "strict.yaml", strict)
    before, versions = len(_runs(home)), _versions(home)
    registry = MlflowClient(home.mlflow_uri)
    champion = registry.get_model_version_by_alias("assay-adult", "champion").version
    state = train(str(path), str(home.root), "quick", return_state=True)
    with pytest.raises(
        GateFailed,
        match=r"fairness gate failed: equalized_odds_difference on sex [0-9.e-]+ "
        r"\(must be <= 0\): FAILED",
    ):
        state.result()
    steps = task_runs(state)
    steps_after_compress = ("calibrate", "conformal", "fairness", "explain", "responsible")
    reran = {n for n in steps_after_compress if steps[n].state.name != "Cached"}
    assert reran == {"fairness", "responsible"}
    runs = _runs(home)
    assert len(runs) == before + 1
    newest = max(runs, key=lambda r: r.info.start_time)
    assert newest.data.tags["assay.gate.fairness"] == "failed"
    new = str(versions + 1)
    assert registry.get_model_version_by_alias("assay-adult", "challenger").version == int(new)
    assert registry.get_model_version_by_alias("assay-adult", "champion").version == champion
    last = AuditLog(home.audit).entries()[-1]
    assert (last.action, last.version) == ("not-promoted", new)
    assert last.reason.startswith("fairness gate failed: equalized_odds_difference on sex")


def test_predict_serves_the_champion_and_rollback_moves_it_back(first_run, tmp_path, capsys):
    """A new spec (a wider promotion margin) makes a new candidate from the cached stages; it
    passes and takes champion; rollback hands champion back to the one before."""
    home, _ = first_run
    path = adult_variant(tmp_path / "wider.yaml", wider_promotion_margin)
    registry = MlflowClient(home.mlflow_uri)
    before = registry.get_model_version_by_alias("assay-adult", "champion").version
    new, audited = _versions(home) + 1, len(AuditLog(home.audit).entries())
    result = train(str(path), str(home.root), "quick")
    assert f"assay-adult version {new}; champion" in result.summary()
    rows = tmp_path / "rows.csv"
    rows.write_text(  # the Adult spec reads headerless CSV, like the UCI files
        "52,Self-emp-inc,287927,HS-grad,9,Married-civ-spouse,Exec-managerial,Wife,White,"
        "Female,15024,0,40,United-States\n"
    )
    capsys.readouterr()
    common = ["--home", str(home.root), "--spec", str(path)]
    assert main(["predict", "--model", "champion", *common, str(rows)]) == 0
    served = capsys.readouterr()
    assert f"model: assay-adult champion = v{new}" in served.err
    assert served.out.splitlines()[0] == "probability,prediction,review"
    assert main(["rollback", "--reason", "v3 answers slowly", *common]) == 0
    assert main(["predict", "--model", "champion", *common, str(rows)]) == 0
    assert f"model: assay-adult champion = v{before}" in capsys.readouterr().err
    assert main(["history", *common]) == 0
    history = capsys.readouterr().out
    lines = [line for line in history.splitlines() if not line.startswith(" ")]
    assert len(lines) >= audited + 2  # what this test did, after what it found
    assert [line.split()[2:4] for line in lines[-2:]] == [
        ["promoted", "assay-adult"],
        ["rolled-back", "assay-adult"],
    ]
    assert "v3 answers slowly" in lines[-1]
    seen = wait_for_events("assay.model.promoted", "assay.model.rolled-back")
    assert {"assay.model.promoted", "assay.model.rolled-back"} <= {e.event for e in seen}
    rolled = next(e for e in seen if e.event == "assay.model.rolled-back")
    assert rolled.resource.id == "assay.model.assay-adult"
    for event in seen:  # every model event names its dataset too (beside Prefect's own)
        assert [r.id for r in event.related if r.role == "dataset"] == ["assay.dataset.adult"]
    assert rolled.payload["reason"] == "v3 answers slowly"


# What the ingest deployment does after accepting files, and the plan only privacy needs
FOLLOW_UPS = {"find-reference", "load-rows", "check-rows", "retrain-policy", "announce-unlabelled"}


def test_assay_run_reads_its_spec_once_and_runs_only_what_training_needs(first_run):
    """The CLI reads the spec and hands it to the run flow, which hands it to ingest and
    train (each carries it as a parameter: no flow reads the file again); the run's ingest
    skips the ingest deployment's follow-ups, and its training (Adult is not private) plans
    no privacy."""
    with get_client(sync_client=True) as client:
        (parent,) = [
            r
            for r in client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["dataset:adult"]))
            )
            if client.read_flow(r.flow_id).name == "run"
        ]
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])
            )
        )
        by_flow = {client.read_flow(r.flow_id).name: r for r in children}
        ran = {
            name: {
                t.name.rsplit("-", 1)[0]
                for t in client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
                )
            }
            for name, run in by_flow.items()
        }
    assert set(by_flow) == {"ingest", "train"}
    for run in (parent, *children):
        assert run.parameters["spec"]["name"] == "adult"
        assert run.parameters["spec"]["profile"] == "quick"
    assert "accept-batch" in ran["ingest"] and not ran["ingest"] & FOLLOW_UPS
    assert "compress" in ran["train"] and "privacy-plan" not in ran["train"]
