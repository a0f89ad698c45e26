"""`assay site`: one command, run inside a federation site, that makes it answer rounds. It
creates the site's own process work pool (`site-<name>`) and the `site-round/<name>`
deployment on it (the site's spec and home as its parameters), then runs a worker of that pool
here, with this site's ASSAY_HOME, until stopped. The coordinator only ever reaches the site
through those runs and the exchange."""

from __future__ import annotations

import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import NoReturn

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists

from assay.config import load_spec
from assay.errors import SpecError
from assay.home import Home
from tasks.federated import SITE_FLOW

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = "flows/site.py:site_round"


def pool_name(site: str) -> str:
    return f"site-{site}"


def deploy_site(site: str, spec_path: Path, home: Home, profile: str | None = None) -> str:
    """The site's work pool and its `site-round/<site>` deployment; returns the pool's name."""
    if not os.environ.get("PREFECT_API_URL"):
        raise SpecError(
            "assay site needs the federation's Prefect server: set PREFECT_API_URL to the "
            "server the coordinator uses"
        )
    spec = load_spec(spec_path, profile)  # a bad spec fails here, not at the first round
    if spec.federation is not None:
        raise SpecError(f"{spec_path}: a site's spec has no `federation:` (the coordinator's has)")
    pool = pool_name(site)
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    flow = Flow.from_source(source=str(ROOT), entrypoint=ENTRYPOINT)
    parameters = {"spec_path": str(spec_path.resolve()), "home": str(home.root), "site": site}
    flow.deploy(
        name=site,
        work_pool_name=pool,
        parameters={**parameters, "profile": profile} if profile else parameters,
        tags=[f"site:{site}", f"dataset:{spec.name}"],
        description=f"Federation site {site}: answers the coordinator's rounds on its own rows",
        build=False,
        push=False,
        print_next_steps=False,
        ignore_warnings=True,
    )
    print(f"site {site}: deployment {SITE_FLOW}/{site} on work pool {pool}", flush=True)
    return pool


def run_worker(pool: str, home: Home) -> NoReturn:
    """Become a process worker of the site's pool, with the site's home: the process is
    replaced, so Ctrl-C or a service manager's SIGTERM stops the worker itself."""
    env = {**os.environ, "ASSAY_HOME": str(home.root)}
    prefect = str(Path(sys.executable).with_name("prefect"))
    print(f"worker of {pool} starting (Ctrl-C stops it)", flush=True)
    os.execve(prefect, [prefect, "worker", "start", "--pool", pool, "--type", "process"], env)
