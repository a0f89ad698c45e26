"""A site the coordinator cannot reach stops the federation with one line naming the site:
no deployment for it on the server, or a deployment whose worker never takes the run."""

from __future__ import annotations

import pytest

from assay.errors import SiteFailed
from assay.federated.exchange import Exchange
from flows.site import site_round
from tasks.federated import ask_sites
from tests.conftest import mixed_spec_for


def federated(tmp_path, sites: list[str]):
    federation = {"sites": sites, "round_timeout_s": 3}
    return mixed_spec_for(tmp_path / "suite.json", federation=federation)


def test_a_site_without_a_deployment_is_named_with_the_command_that_starts_it(
    prefect_api, tmp_path
):
    spec = federated(tmp_path, ["nowhere", "elsewhere"])
    with pytest.raises(SiteFailed, match=r"site nowhere: no `site-round/nowhere` deployment"):
        ask_sites(spec, Exchange(tmp_path / "exchange"), "census", 0)


def test_a_site_whose_worker_never_answers_times_out_naming_it(prefect_api, tmp_path):
    for site in ("idle-a", "idle-b"):
        site_round.to_deployment(name=site, parameters={"spec_path": "unused"}).apply()
    spec = federated(tmp_path, ["idle-a", "idle-b"])
    with pytest.raises(
        SiteFailed, match=r"site idle-a: round 0 \(census\) not answered within 3 s"
    ):
        ask_sites(spec, Exchange(tmp_path / "exchange"), "census", 0)
