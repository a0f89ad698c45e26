"""The privacy benchmark's parts on generated data with a tiny model: a private chain's
shipped figures and spent budget, the non-IID deal's skew and its floor of rows per site, and
federated rounds beside centralised LoRA."""

from __future__ import annotations

import numpy as np
import pytest

from assay.config import load_spec
from assay.data.labels import labels
from bench.privacy import MIN_CLASS_ROWS, SITES, deal_rows, federation, private_chain, with_privacy
from bench.quality import spec_split
from tests.synthetic import write_dataset

# The tiny schedule is a few hundred private steps: it takes 10x private learning rates
PRIVATE = {
    "privacy": {"epsilon": 1.0, "public": ["validation", "calibration"], "learning_rate_scale": 10}
}


@pytest.fixture
def spec(tmp_path):
    return load_spec(write_dataset(tmp_path / "churn", n=3000, spec=PRIVATE))


@pytest.fixture
def sites_spec(tmp_path):
    """Enough rows that five sites each hold ten of each class under a Dirichlet deal."""
    return load_spec(write_dataset(tmp_path / "sites", n=5000))


def test_the_non_iid_deal_skews_each_groups_sites_and_the_iid_deal_does_not(sites_spec):
    spec = sites_spec
    split = spec_split(spec)
    feature = spec.sensitive_features[0]
    groups = split.train[feature].astype(str).to_numpy()
    for deal, skewed in (("iid", False), ("dirichlet", True)):
        site = deal_rows(split, spec, deal)["train"]
        assert set(site) == set(range(SITES)) and len(site) == len(split.train)
        share = np.bincount(site[groups == "yes"], minlength=SITES) / (groups == "yes").sum()
        assert (share.max() > 0.3) == skewed, share  # five even sites hold 0.2 each
    assert (
        deal_rows(split, spec, "dirichlet")["valid"] == deal_rows(split, spec, "dirichlet")["valid"]
    ).all()


@pytest.mark.slow
def test_a_private_chain_reports_its_shipped_figures_and_spends_within_budget(spec, tmp_path):
    assert with_privacy(spec, None).privacy is None
    assert with_privacy(spec, 3.0).privacy.learning_rate_scale == 10  # the spec's own settings
    row = private_chain(spec_split(spec), spec, 8.0, tmp_path / "bench")
    assert 7.0 < row["spent_epsilon"] <= 8.0 and row["not_covered"] == []
    assert 0.5 < row["roc_auc"] <= 1 and 0 <= row["equalized_odds"] <= 1
    assert row["feature"] == "home_owner" and row["seconds"] > 0


def test_every_site_of_a_deal_holds_enough_rows_of_each_class_or_the_deal_says_why(
    sites_spec, tmp_path
):
    big = sites_spec
    split = spec_split(big)
    for deal in ("iid", "dirichlet"):
        for name, site in deal_rows(split, big, deal).items():
            positive = labels(getattr(split, name), big).astype(bool)
            for rows in (positive, ~positive):
                assert np.bincount(site[rows], minlength=SITES).min() >= MIN_CLASS_ROWS
    small = load_spec(write_dataset(tmp_path / "small", n=1000))
    with pytest.raises(ValueError, match=r"no iid deal of 576 training .* 5 sites 10 rows"):
        deal_rows(spec_split(small), small, "iid")


@pytest.mark.slow
def test_federated_rounds_come_near_centralised_lora_on_every_deal(sites_spec, tmp_path):
    spec = sites_spec
    result = federation(spec_split(spec), spec, tmp_path / "bench", rounds=3)
    assert 0.6 < result["central_roc_auc"] <= 1
    for run in result["runs"]:
        assert abs(run["gap"]) < 0.2 and 0.5 < run["worst_site_auc"] <= 1, run
        assert run["rounds_trained"] == 3 and 0 <= run["rounds_to_best"] <= 3
        assert run["bytes_per_round"] > 0
        assert len(run["site_rows"]) == SITES
