"""A whole private `assay run` on generated data, as a user runs it: every weight-training
stage by DP-SGD, the privacy gate, the guarantee on the version's tags and the model card,
and bad privacy settings as one clear line."""

from __future__ import annotations

import re

import pytest
from mlflow import MlflowClient

from assay.home import Home
from tests.flows.test_datasets import assay
from tests.synthetic import LENIENT, edit, write_dataset

pytestmark = pytest.mark.slow

# Four epochs of the tiny model are a few hundred private steps: the default private learning
# rates (3x, measured on Adult's schedule of about 1,200 steps) barely move the weights there
# and the quality gate fails the run (teacher ROC AUC 0.61), so this short schedule takes 10x.
PRIVATE = {
    "privacy": {
        "epsilon": 8.0,
        "delta": 1e-5,
        "public": ["validation", "calibration"],
        "learning_rate_scale": 10,
    }
}


def test_a_private_run_spends_within_its_budget_and_says_what_it_covers(tmp_path):
    home = tmp_path / "home"
    spec = write_dataset(tmp_path / "churn", n=3000, spec={**LENIENT, **PRIVATE})
    first = assay("run", "--spec", spec, home=home)
    assert first.returncode == 0, first.stderr[-3000:]
    spent = re.search(r"- Privacy: epsilon (\d\.\d+) of 8 \(delta 1e-05, rdp", first.stdout)
    assert spent and 7.0 < float(spent.group(1)) <= 8.0, first.stdout
    assert "not covered" not in first.stdout.split("- Privacy:")[1].splitlines()[0]

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    (version,) = client.search_model_versions("name='assay-churn'")
    tags = version.tags
    assert tags["assay.gate.privacy"] == "passed"
    assert abs(float(tags["assay.privacy.epsilon"]) - float(spent.group(1))) < 1e-3
    assert tags["assay.privacy.not_covered"] == "none"
    assert "student weights (distillation) (DP-SGD)" in tags["assay.privacy.covers"]
    run = client.get_run(version.run_id)
    assert run.data.metrics["privacy.budget"] == 8.0
    assert run.data.metrics["privacy.steps.finetune"] > 0

    card = (Home(home).for_dataset("churn").namespace / "runs").glob("*/model-card/model-card.md")
    text = next(card).read_text()
    assert "## Differential privacy" in text and "Evidence only" in text

    again = assay("run", "--spec", spec, home=home)  # unchanged data: every stage cached
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Cached stages reused: baseline, pretrain, finetune, compress" in again.stdout
    assert f"- Privacy: epsilon {spent.group(1)} of 8" in again.stdout
    assert "version 1 (already registered)" in again.stdout


def test_bad_privacy_settings_are_one_clear_error(tmp_path):
    """Each is refused before anything trains; the later runs reuse the first one's batches."""
    spec = write_dataset(tmp_path / "churn", n=600, spec=LENIENT)
    for privacy, message in (
        ({"epsilon": 1.0, "delta": 0.01}, "privacy.delta: 0.01 is not below 1 / "),
        ({"epsilon": 1e-4}, "privacy: epsilon 0.0001 at delta 1e-05 cannot be met"),
        ({"epsilon": 1.0, "accountant": "gdp"}, "privacy.accountant: Input should be"),
    ):
        bad = edit(spec, tmp_path / "churn" / "bad.yaml", {"privacy": privacy})
        done = assay("run", "--spec", bad, home=tmp_path / "home")
        assert done.returncode != 0
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], (done.stdout + done.stderr)[-2000:]
