"""Every flow opens its dataset the same way: a deployment must be named after its spec's
dataset, whichever way it was registered (`assay serve` or `prefect deploy`)."""

from __future__ import annotations

import pytest

from assay.errors import SpecError
from flows.dataset import open_dataset
from tests.conftest import ADULT_SPEC


def test_a_deployment_named_after_another_dataset_is_refused(monkeypatch, tmp_path):
    # prefect.runtime reads these overrides as a deployment run would see them
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__NAME", "churn")
    monkeypatch.setenv("PREFECT__RUNTIME__FLOW_RUN__FLOW_NAME", "train")
    with pytest.raises(
        SpecError, match=r"deployment train/churn runs .*adult\.yaml, whose dataset"
    ):
        open_dataset(str(ADULT_SPEC), str(tmp_path))
    assert not (tmp_path / "datasets").exists(), "refused before anything is written"


def test_a_direct_call_opens_the_datasets_namespace(tmp_path):
    spec, where = open_dataset(str(ADULT_SPEC), str(tmp_path), "quick")
    assert (spec.name, spec.profile, where.dataset) == ("adult", "quick", "adult")
    assert where.landing == tmp_path / "landing" / "adult"
    assert where.archive == tmp_path / "archive" / "adult"


def test_a_spec_handed_down_is_used_as_it_is(tmp_path, adult_spec):
    """`assay run` reads its spec once and hands it down: no file is read again."""
    spec, where = open_dataset(adult_spec, str(tmp_path))
    assert spec is adult_spec and where.dataset == "adult"
