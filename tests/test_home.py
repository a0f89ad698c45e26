"""The home's layout: one namespace per dataset, and an older single-dataset home refused
with what to do (or moved, by `assay migrate-home`)."""

from __future__ import annotations

import pytest

from assay.home import Home, HomeLayoutError
from cli.main import main
from tests.conftest import ADULT_SPEC


def test_each_dataset_has_its_own_namespace_and_shares_the_registry(tmp_path):
    home = Home(tmp_path)
    adult, churn = home.for_dataset("adult"), home.for_dataset("churn")
    for name in ("batches", "quarantine", "reports", "audit", "last_training", "ledger"):
        assert getattr(adult, name) != getattr(churn, name)
        assert getattr(adult, name).is_relative_to(tmp_path / "datasets" / "adult")
    assert adult.stage_dir("pretrain", "k" * 16) != churn.stage_dir("pretrain", "k" * 16)
    assert adult.mlflow_uri == churn.mlflow_uri and adult.prefect == churn.prefect
    with pytest.raises(ValueError, match="for_dataset"):
        _ = home.batches


def test_a_single_dataset_home_is_refused_with_what_to_do_then_migrated(tmp_path, capsys):
    old = tmp_path / "home"
    (old / "store" / "batches").mkdir(parents=True)
    (old / "store" / "batches" / "abc.json").write_text("{}")
    (old / "quarantine").mkdir()
    with pytest.raises(HomeLayoutError, match="assay migrate-home --spec SPEC"):
        Home(old).for_dataset("adult")
    assert main(["history", "--home", str(old), "--spec", str(ADULT_SPEC)]) == 2
    assert "single-dataset layout" in capsys.readouterr().err
    assert main(["migrate-home", "--home", str(old), "--spec", str(ADULT_SPEC)]) == 0
    assert "moved store, quarantine" in capsys.readouterr().out
    moved = Home(old).for_dataset("adult")
    assert (moved.batches / "abc.json").read_text() == "{}" and moved.quarantine.is_dir()
