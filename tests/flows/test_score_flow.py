"""The score flow on a real (temporary) Prefect API and a real MLflow registry: each unlabelled
batch gets one predictions file per champion version, written once; a challenger scores beside
it in shadow, with its figures as a Prefect artifact and an MLflow run."""

from __future__ import annotations

import shutil

import mlflow
import pandas as pd
import pytest

from assay.data.store import BatchStore
from assay.home import Home
from assay.modeling.paired import PairedRule
from assay.registry.audit import AuditLog
from assay.registry.models import CHAMPION, Submission, client, decide, promote, register
from assay.registry.tracking import tracking_uri
from assay.serving.policy import DecisionPolicy
from assay.serving.predictor import Predictor
from flows.score import score
from tests.conftest import deploy_tiny_model, mixed_rows, mixed_spec_for, versus
from tests.flows.helpers import artifacts
from tests.serving.conftest import run_id

pytestmark = pytest.mark.usefixtures("prefect_api")
PASS = {"compression": {"passed": True, "reason": "passed"}}
FAIL = {"fairness": {"passed": False, "reason": "fairness gate failed"}}


@pytest.fixture
def scoring(tmp_path):
    """A home with champion v1, one unlabelled and one labelled batch; the spec's path."""
    spec = mixed_spec_for(tmp_path / "suite.json", sensitive_features=["colour"])
    path = tmp_path / "spec.yaml"
    path.write_text(spec.model_dump_json(), encoding="utf-8")
    home = Home(tmp_path / "home", "toy")
    package = deploy_tiny_model(spec, tmp_path / "v1")
    DecisionPolicy(temperature=1.5).save(package)
    first = _register(home, package, 1)
    promote(home, first, decide(PASS, 0.9, None, PairedRule(0.0)), AuditLog(home.audit))
    store = BatchStore(home.batches)
    source = tmp_path / "source.csv"
    source.write_text("x\n", encoding="utf-8")
    unlabelled = store.put(
        mixed_rows(50, 3).drop(columns=["y"]), source=source, labelled=False, warnings=[]
    )
    source.write_text("y\n", encoding="utf-8")
    store.put(mixed_rows(50, 4), source=source, labelled=True, warnings=[])
    return home, path, package, unlabelled.record


def _register(home, package, n):
    identity = {"assay.fingerprint": f"f{n}", "assay.spec_digest": "s", "assay.code": "c"}
    return register(
        home, "assay-toy", run_id(home), Submission(package, mixed_rows(4, 9), identity)
    )


def test_an_unlabelled_batch_gets_one_predictions_file_per_champion_version(scoring):
    home, spec, package, batch = scoring
    (written,) = score(str(spec), str(home.root))
    assert [p.name for p in home.predictions.iterdir()] == [f"{batch.hash[:16]}-v1.parquet"]
    got = pd.read_parquet(written)
    expected = Predictor.load(package).predict(BatchStore(home.batches).load(batch.hash))
    pd.testing.assert_frame_equal(got, expected)
    assert score(str(spec), str(home.root)) == []  # scored once
    assert score(str(spec), str(home.root), batches=["0000"]) == []  # not a batch of ours


def test_a_challenger_scores_in_shadow_with_its_figures(scoring, tmp_path):
    home, spec, package, batch = scoring
    everyone = tmp_path / "v2"
    shutil.copytree(package, everyone)
    DecisionPolicy(temperature=1.5, threshold=0.0).save(everyone)  # every row positive
    second = _register(home, everyone, 2)
    promote(
        home, second, decide(FAIL, 0.9, versus(0.9, 0.9), PairedRule(0.0)), AuditLog(home.audit)
    )  # challenger only
    assert client(home).get_model_version_by_alias("assay-toy", CHAMPION).version == 1
    state = score(str(spec), str(home.root), batches=[batch.hash[:12]], return_state=True)
    assert len(state.result()) == 1
    assert [p.name for p in home.predictions.glob("*.parquet")] == [f"{batch.hash[:16]}-v1.parquet"]
    (shadow,) = (home.predictions / "shadow").iterdir()
    assert shadow.name == f"{batch.hash[:16]}-v2.parquet"
    assert set(pd.read_parquet(shadow)["prediction"]) == {"yes"}
    table = artifacts(state)["shadow"]
    assert "challenger v2 beside champion v1 on 50 rows" in table.description
    mlflow.set_tracking_uri(tracking_uri(home))
    (run,) = mlflow.search_runs(experiment_names=["assay-toy-scoring"], output_format="list")
    champion_rate = run.data.metrics["shadow.positive_rate.champion"]
    assert run.data.metrics["shadow.positive_rate.challenger"] == 1.0
    assert run.data.metrics["shadow.agreement"] == pytest.approx(champion_rate)
    groups = [k for k in run.data.metrics if k.startswith("shadow.rate_difference.colour.")]
    assert sorted(groups) == [
        f"shadow.rate_difference.colour.{c}" for c in ("blue", "green", "red")
    ]


def test_without_a_champion_nothing_is_scored(tmp_path):
    spec = mixed_spec_for(tmp_path / "suite.json")
    path = tmp_path / "spec.yaml"
    path.write_text(spec.model_dump_json(), encoding="utf-8")
    home = Home(tmp_path / "home", "toy")
    run_id(home)  # a registry, with nothing registered in it
    assert score(str(path), str(home.root)) == []
