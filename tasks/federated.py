"""The coordinator's calls to its sites: every site's `site-round/<site>` deployment is run at
once (each on its site's work pool, so its worker, inside the site, runs it) and waited for;
a site that fails or does not answer in time stops the federation, naming the site."""

from __future__ import annotations

import time

from prefect import task
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

from assay.config import Spec
from assay.data.snapshot import Snapshot
from assay.errors import SiteFailed
from assay.federated.coordinator import Ask, read_census
from assay.federated.exchange import Exchange
from assay.home import Home

SITE_FLOW = "site-round"
POLL_S = 1.0


def exchange_of(home: Home) -> Exchange:
    """Where the dataset's federation exchanges setup, adapters and reports: one at a time,
    as a dataset trains once at a time (tasks/concurrency.py)."""
    return Exchange(home.namespace / "federation")


def ask_sites(spec: Spec, exchange: Exchange, mode: str, round_: int, key: str = "") -> None:
    """One round at every site, all at once; returns when every site has answered. `key`
    (the stage's) makes a retried round find the runs it already started."""
    sites, timeout = spec.federation.sites, spec.federation.round_timeout_s
    runs = {}
    for site in sites:
        parameters = {
            "site": site,
            "exchange": str(exchange.root),
            "round_number": round_,
            "mode": mode,
        }
        try:
            runs[site] = run_deployment(
                f"{SITE_FLOW}/{site}",
                parameters=parameters,
                timeout=0,
                idempotency_key=f"{key}-{mode}-{round_}-{site}" if key else None,
                tags=[f"site:{site}", f"dataset:{spec.name}"],
            )
        except ObjectNotFound:
            raise SiteFailed(
                f"site {site}: no `{SITE_FLOW}/{site}` deployment on the Prefect server "
                f"(start it at the site: `assay site --name {site} --spec SITE_SPEC`; the "
                f"coordinator must use the same server: PREFECT_API_URL)"
            ) from None
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        for site, run in runs.items():
            while not (run := client.read_flow_run(run.id)).state.is_final():
                if time.monotonic() > deadline:
                    raise SiteFailed(
                        f"site {site}: round {round_} ({mode}) not answered within {timeout:.0f} s "
                        f"(state {run.state.name}: is the site's worker running?)"
                    )
                time.sleep(POLL_S)
            if not run.state.is_completed():
                raise SiteFailed(
                    f"site {site}: round {round_} ({mode}) {run.state.name}: {run.state.message}"
                )


@task(name="federation-census")
def census(spec: Spec, home: Home, snap: Snapshot) -> Snapshot:
    """Before any key is computed: every site's counts and snapshot fingerprint, folded into
    this run's snapshot so that a new batch at any site retrains."""
    exchange = exchange_of(home)
    ask_sites(spec, exchange, "census", 0)
    found = read_census(exchange, spec.federation.sites)
    for c in found:
        print(
            f"site {c.site}: {c.rows:,} training rows ({c.positives:,} positive), "
            f"{c.valid_rows:,} validation rows"
        )
    return snap.with_sites([c.fingerprint for c in found])


def asker(spec: Spec, exchange: Exchange, key: str) -> Ask:
    """The coordinator's `ask`: a round at every site through Prefect, with progress."""

    def ask(mode: str, round_: int) -> None:
        started = time.perf_counter()
        ask_sites(spec, exchange, mode, round_, key)
        seconds = time.perf_counter() - started
        print(f"federation round {round_} ({mode}): every site answered in {seconds:.1f} s")

    return ask
