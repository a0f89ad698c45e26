"""The privacy benchmark's parts on generated data with a tiny model: a private chain's
shipped figures and spent budget, the non-IID deal's skew."""

from __future__ import annotations

import numpy as np
import pytest

from assay.config import load_spec
from bench.privacy import SITES, deal_rows, private_chain, with_privacy
from bench.quality import spec_split
from tests.synthetic import write_dataset

# The tiny schedule is a few hundred private steps: it takes 10x private learning rates
PRIVATE = {"privacy": {"epsilon": 1.0, "public": ["validation"], "learning_rate_scale": 10}}


@pytest.fixture
def spec(tmp_path):
    return load_spec(write_dataset(tmp_path / "churn", n=3000, spec=PRIVATE))


def test_the_non_iid_deal_skews_each_groups_sites_and_the_iid_deal_does_not(spec):
    split = spec_split(spec)
    feature = spec.sensitive_features[0]
    groups = split.train[feature].astype(str).to_numpy()
    for deal, skewed in (("iid", False), ("dirichlet", True)):
        site = deal_rows(split, spec, deal)["train"]
        assert set(site) == set(range(SITES)) and len(site) == len(split.train)
        share = np.bincount(site[groups == "yes"], minlength=SITES) / (groups == "yes").sum()
        assert (share.max() > 0.4) == skewed, share
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
