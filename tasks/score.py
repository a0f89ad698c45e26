"""Prefect tasks for batch scoring: which versions score, which batches need scores, the
scoring itself, and the shadow comparison's artifact and MLflow run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_table_artifact

from assay.config import Spec
from assay.data.store import BatchRecord, BatchStore
from assay.home import Home
from assay.registry.models import CHALLENGER, CHAMPION, download, holder, require_registry
from assay.registry.tracking import RunName, log_run
from assay.serving.batch import (
    SHADOW_DIR,
    Predictions,
    ShadowReport,
    predictions_file,
    score_batch,
    shadow_report,
    to_score,
)
from assay.serving.predictor import Predictor
from tasks.events import UNLABELLED_ACCEPTED, about_dataset
from tasks.policy import IO_RETRIES


@dataclass(frozen=True)
class Version:
    """A registered version that scores: its number and its fetched, verified package."""

    number: str
    package: Path

    def predictor(self) -> Predictor:
        return Predictor.load(self.package)


@task(name="find-versions", **IO_RETRIES)
def versions(home: Home, spec: Spec) -> tuple[Version | None, Version | None]:
    """The champion, and the challenger when it is another version (it scores in shadow)."""
    name = spec.registered_name
    require_registry(home, name)
    found = {alias: holder(home, name, alias) for alias in (CHAMPION, CHALLENGER)}
    if found[CHAMPION] is None:
        return None, None
    champion = Version(found[CHAMPION], download(home, name, CHAMPION))
    other = found[CHALLENGER]
    if other is None or other == found[CHAMPION]:
        return champion, None
    return champion, Version(other, download(home, name, CHALLENGER))


@task(name="announce-unlabelled", **IO_RETRIES)
def announce_unlabelled(home: Home, spec: Spec, accepted: list[str]) -> list[str]:
    """`assay.data.unlabelled` naming the accepted batches without labels (the score
    deployment's trigger passes them on); nothing when every batch was labelled."""
    store = BatchStore(home.batches)
    found = [b for b in accepted if (r := store.get_record(b)) is not None and not r.labelled]
    if found:
        about_dataset(UNLABELLED_ACCEPTED, spec.name, {"batches": found})
    return found


@task(name="batches-to-score", **IO_RETRIES)
def batches(home: Home, version: str, asked: list[str] | None) -> list[BatchRecord]:
    return to_score(BatchStore(home.batches).active(), home.predictions, version, asked)


@task(name="score-batch", **IO_RETRIES)
def score(home: Home, record: BatchRecord, version: Version, shadow: bool = False) -> pd.DataFrame:
    """The batch's predictions by this version, written once to predictions/ (a shadow
    version's to predictions/shadow/)."""
    folder = home.predictions / SHADOW_DIR if shadow else home.predictions
    rows = BatchStore(home.batches).load(record.hash)
    return score_batch(
        version.predictor(), rows, predictions_file(folder, record.hash, version.number)
    )


@task(name="shadow-report", **IO_RETRIES)
def report_shadow(
    home: Home,
    spec: Spec,
    record: BatchRecord,
    versions: tuple[Version, Version],
    scored: tuple[pd.DataFrame, pd.DataFrame],
) -> ShadowReport:
    """Challenger beside champion on the batch: a table per sensitive group in the UI, and the
    figures as an MLflow run in the dataset's scoring experiment."""
    rows = BatchStore(home.batches).load(record.hash)
    champion = Predictions(versions[0].number, scored[0])
    challenger = Predictions(versions[1].number, scored[1])
    found = shadow_report(record.hash, champion, challenger, rows, spec)
    create_table_artifact(key="shadow", table=found.table(), description=found.summary())
    log_run(
        home,
        RunName(
            f"assay-{spec.name}-scoring",
            f"shadow {record.source} v{challenger.version} vs v{champion.version}",
        ),
        params={
            "batch": record.hash,
            "champion": champion.version,
            "challenger": challenger.version,
        },
        metrics=found.metrics(),
        tags={"assay.spec": spec.name, "assay.kind": "shadow"},
    )
    return found
