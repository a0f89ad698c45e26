"""A federation site's flow: served as `site-round/<site>` on the site's own work pool, so the
worker that runs it is inside the site, with the site's ASSAY_HOME. It reads the site's own
batches and answers the coordinator through the exchange with counts (census), or a score and
an adapter update (a round); no row is written there."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import flow

from assay.config import load_spec
from assay.data.snapshot import load_batches, take_snapshot
from assay.data.split import split_batches
from assay.data.store import BatchStore
from assay.errors import SpecError
from assay.federated.exchange import Exchange
from assay.federated.site import SiteData, answer_round, take_census
from assay.home import Home
from flows.dataset import label_run

MODES = ("census", "train", "evaluate")


@flow(name="site-round", log_prints=True)
def site_round(
    spec_path: str,
    site: str,
    exchange: str,
    round_number: int,
    mode: str,
    home: str | None = None,
    profile: str | None = None,
) -> dict:
    """The site's census, or its answer to one round (`train`: score, train, send the update;
    `evaluate`: score only)."""
    if mode not in MODES:
        raise SpecError(f"site-round: mode {mode!r} is not one of {', '.join(MODES)}")
    spec = load_spec(spec_path, profile)
    label_run(spec.name)
    where = Home.from_env(home).for_dataset(spec.name)
    store = BatchStore(where.batches)
    snap = take_snapshot(store, spec)
    split = split_batches(load_batches(store, snap), spec)
    shared, local = Exchange(Path(exchange)), SiteData(site, split, spec)
    if mode == "census":
        return asdict(take_census(shared, local, snap.fingerprint))
    report = answer_round(shared, round_number, local, train=mode == "train")
    print(
        f"site {site} round {round_number}: validation ROC AUC {report.valid_auc:.4f} as received"
    )
    return asdict(report)
