"""The pyfunc snippet of docs/serving.md, run as written against the registry of a quick Adult run: its
probabilities are `assay predict`'s on the same file."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from assay.registry.models import download
from assay.serving.predictor import predict_file
from tests.conftest import ROOT

MARKER = "<!-- tested: tests/serving/test_pyfunc_snippet.py -->"


def docs_snippet() -> str:
    text = (ROOT / "docs" / "serving.md").read_text(encoding="utf-8")
    after = text.split(MARKER, 1)[1]
    return re.search(r"```python\n(.*?)```", after, re.DOTALL).group(1)


def test_the_pyfunc_snippet_scores_as_assay_predict(quick_adult_run, monkeypatch, tmp_path):
    home, _ = quick_adult_run
    code = docs_snippet()
    assert 'mlflow.set_tracking_uri("sqlite:///.assay/mlflow.db")' in code
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(code.replace("sqlite:///.assay/mlflow.db", home.mlflow_uri), namespace)
    scored = namespace["scored"]
    out = tmp_path / "predicted.parquet"
    predict_file(download(home, "assay-adult", "champion"), ROOT / "data" / "adult.test.gz", out)
    expected = pd.read_parquet(out)
    assert len(scored) == len(expected) == 16281
    assert np.abs(scored["probability"] - expected["probability"]).max() <= 1e-6
    assert (scored["prediction"] == expected["prediction"]).all()
    assert (scored["review"] == expected["review"]).all()
