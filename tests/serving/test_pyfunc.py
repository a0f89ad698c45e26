"""The registered version is an MLflow pyfunc on raw rows: loaded with MLflow's own API it
gives what `assay predict` gives, refuses a tampered package, and names a bad column."""

from __future__ import annotations

import shutil

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from assay.registry.tracking import tracking_uri
from assay.serving.manifest import TamperedPackage
from assay.serving.predictor import Predictor
from tests.conftest import mixed_rows
from tests.serving.conftest import NAME


def _load(home, uri=f"models:/{NAME}@champion"):
    mlflow.set_tracking_uri(tracking_uri(home))
    return mlflow.pyfunc.load_model(uri)


def test_raw_rows_score_as_the_predictor_scores_them(registered):
    home, package = registered
    rows = mixed_rows(300, 5).drop(columns=["y"])
    got = _load(home).predict(rows)
    expected = Predictor.load(package).predict(rows)
    assert list(got.columns) == ["probability", "prediction", "review"]
    assert np.abs(got["probability"] - expected["probability"]).max() <= 1e-6
    assert (got["prediction"] == expected["prediction"]).all()
    assert (got["review"] == expected["review"]).all()
    assert set(got["prediction"]) <= {"yes", "no"} and got["review"].dtype == bool


def test_signature_and_input_example_are_raw_columns(registered):
    home, _ = registered
    mlflow.set_tracking_uri(tracking_uri(home))
    info = mlflow.models.get_model_info(f"models:/{NAME}@champion")
    types = {c.name: c.type.name for c in info.signature.inputs.inputs}
    assert types == {"x": "double", "colour": "string", "note": "string"}
    assert [c.name for c in info.signature.outputs.inputs] == [
        "probability",
        "prediction",
        "review",
    ]


def test_a_label_column_in_the_rows_is_ignored(registered):
    home, _ = registered
    rows = mixed_rows(20, 6)
    model = _load(home)
    with_label = model.predict(rows)
    assert with_label.equals(model.predict(rows.drop(columns=["y"])))


def test_an_unknown_column_is_refused_in_a_scoring_server_only(registered, monkeypatch):
    home, _ = registered
    model = _load(home)
    rows = mixed_rows(3, 1).drop(columns=["y"]).assign(shoe_size=42)
    assert len(model.predict(rows)) == 3  # in process: MLflow drops it, as it always does
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "true")
    with pytest.raises(MlflowException, match="unknown column 'shoe_size'") as raised:
        model.predict(rows)
    assert raised.value.get_http_status_code() == 400
    assert len(model.predict(mixed_rows(3, 1))) == 3  # the label column is not unknown


def test_a_missing_column_is_refused_naming_it(registered):
    home, _ = registered
    with pytest.raises(MlflowException, match="colour") as raised:
        _load(home).predict(mixed_rows(3, 1).drop(columns=["y", "colour"]))
    assert raised.value.get_http_status_code() == 400


def test_a_cell_of_the_wrong_type_is_refused_naming_its_column(registered):
    home, _ = registered
    rows = mixed_rows(3, 1).drop(columns=["y"]).astype({"x": object})
    rows.loc[1, "x"] = "not a number"
    with pytest.raises(MlflowException, match="x") as raised:
        _load(home).predict(rows)
    assert raised.value.get_http_status_code() == 400


def test_a_tampered_package_is_refused_when_the_model_loads(registered, tmp_path):
    home, _ = registered
    mlflow.set_tracking_uri(tracking_uri(home))
    local = mlflow.artifacts.download_artifacts(f"models:/{NAME}/1", dst_path=str(tmp_path))
    policy = next((tmp_path).rglob("decision.json"))
    policy.write_text(policy.read_text().replace("0.4", "0.1"))
    with pytest.raises(TamperedPackage, match=r"decision\.json"):
        mlflow.pyfunc.load_model(local)
    shutil.rmtree(local)
