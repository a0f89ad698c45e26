"""MLflow logging: one run per training, in the store under ASSAY_HOME unless told otherwise.

MLFLOW_TRACKING_URI, when set, points the same code at a tracking server (production).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.data
import pandas as pd
import requests
from mlflow.tracking import MlflowClient

from assay.errors import StoreUnreachable
from assay.home import Home


@dataclass(frozen=True)
class DatasetInput:
    """A frame logged as an MLflow dataset (digest, schema, source) with its role."""

    frame: pd.DataFrame
    name: str
    source: str
    context: str
    target: str | None = None


@dataclass(frozen=True)
class RunName:
    """Where a run is filed and what it is called there: MLflow's UI lists a run by the two
    together, and every caller builds both from the dataset's name."""

    experiment: str
    run: str


# Stores this process chose for a home. mlflow.set_tracking_uri writes its URI into
# MLFLOW_TRACKING_URI (for subprocesses), so a value found there may be ours, not the operator's.
_CHOSEN: set[str] = set()


LOCAL_UI = "http://127.0.0.1:5000"  # `mlflow ui --backend-store-uri <home store>`


@dataclass(frozen=True)
class StageRun:
    """A nested run for one pipeline stage: the params, metrics and curves whose names start
    with one of `prefixes`, and the stage's own artifacts."""

    name: str
    prefixes: tuple[str, ...]
    artifacts: tuple[tuple[str, Path], ...] = ()

    def pick(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if k.startswith(self.prefixes)}


def server_uri() -> str | None:
    """The operator's MLFLOW_TRACKING_URI, read now (not at import); None when it is unset or
    holds a home's store that assay itself chose."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    return None if not uri or uri in _CHOSEN else uri


def tracking_uri(home: Home) -> str:
    """The operator's tracking server, else the home's own store."""
    uri = server_uri()
    if uri is None:
        uri = home.mlflow_uri
        _CHOSEN.add(uri)
    return uri


def has_registry(home: Home) -> bool:
    """Whether there is a registry to read: a tracking server, or the home's own store file."""
    return server_uri() is not None or (home.root / "mlflow.db").is_file()


def _connection_failure(exc: BaseException) -> BaseException | None:
    """The network error behind an MLflow error (MLflow wraps it without `from`)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


@contextmanager
def reachable_store(home: Home) -> Iterator[str]:
    """Yields the tracking URI; a server that cannot be reached becomes one clear error naming
    it (MLflow's own message is a page of urllib3 retries)."""
    uri = tracking_uri(home)
    try:
        yield uri
    except Exception as exc:
        cause = _connection_failure(exc)
        if cause is None:
            raise
        kind = "timed out" if isinstance(cause, requests.exceptions.Timeout) else "refused"
        raise StoreUnreachable(
            f"MLflow tracking store {uri} is unreachable (connection {kind}); "
            "retried with backoff, check that the server is up"
        ) from exc


def ensure_experiment(home: Home, name: str) -> str:
    """The experiment id, creating it with artifacts under ASSAY_HOME (not ./mlruns)."""
    home.root.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri(home))
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    return client.create_experiment(name, artifact_location=(home.mlflow_artifacts / name).as_uri())


def log_run(
    home: Home,
    name: RunName,
    *,
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    curves: Mapping[str, Sequence[float]] | None = None,
    datasets: Sequence[DatasetInput] = (),
    artifacts: Sequence[tuple[str, Path]] = (),
    stages: Sequence[StageRun] = (),
) -> str:
    """Log one finished run and return its id. Curves are per-epoch series (step = epoch);
    artifacts are (folder in the run, file or folder here) pairs, "" meaning the top. Each
    stage becomes a nested run holding its share of the params, metrics and curves."""
    mlflow.set_tracking_uri(tracking_uri(home))
    experiment_id = ensure_experiment(home, name.experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=name.run) as run:
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics(dict(metrics))
        for metric, series in (curves or {}).items():
            for epoch, value in enumerate(series, start=1):
                mlflow.log_metric(metric, value, step=epoch)
        mlflow.set_tags(dict(tags))
        for d in datasets:
            with warnings.catch_warnings():
                # MLflow registers its local-artifact source class twice and warns on every
                # local path (the source it picks is right); pandas 3 warns inside its digest.
                warnings.simplefilter("ignore")
                dataset = mlflow.data.from_pandas(
                    d.frame, source=d.source, name=d.name, targets=d.target
                )
            mlflow.log_input(dataset, context=d.context)
        _log_artifacts(artifacts)
        for stage in stages:
            with mlflow.start_run(experiment_id=experiment_id, run_name=stage.name, nested=True):
                mlflow.log_params({k: str(v) for k, v in stage.pick(params).items()})
                mlflow.log_metrics(stage.pick(metrics))
                for metric, series in stage.pick(curves or {}).items():
                    for epoch, value in enumerate(series, start=1):
                        mlflow.log_metric(metric, value, step=epoch)
                mlflow.set_tags({"assay.stage": stage.name})
                _log_artifacts(stage.artifacts)
        return run.info.run_id


def _log_artifacts(artifacts: Sequence[tuple[str, Path]]) -> None:
    for folder, path in artifacts:
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=folder or None)
        else:
            mlflow.log_artifact(str(path), artifact_path=folder or None)


def ui_base() -> str:
    """The MLflow UI: the tracking server, or `mlflow ui` on its default address for the
    local store."""
    server = server_uri()
    base = server if server and server.startswith("http") else LOCAL_UI
    return base.rstrip("/")


def run_url(home: Home, run_id: str) -> str:
    """Where the run shows in the MLflow UI."""
    run = MlflowClient(tracking_uri(home)).get_run(run_id)
    return f"{ui_base()}/#/experiments/{run.info.experiment_id}/runs/{run_id}"


def model_version_url(home: Home, name: str, version: str) -> str:
    """Where the model version shows in the MLflow UI."""
    return f"{ui_base()}/#/models/{name}/versions/{version}"


def find_run(home: Home, experiment: str, tags: Mapping[str, str]) -> str | None:
    """The id of a finished run carrying all these tags, if one exists (reuse, not re-log)."""
    client = MlflowClient(tracking_uri(home))
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    runs = client.search_runs(
        [found.experiment_id], filter_string=query + " and attributes.status = 'FINISHED'"
    )
    return runs[0].info.run_id if runs else None
