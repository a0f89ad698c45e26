"""Retry and cache policy shared by the tasks, with the reason each is safe."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import sqlalchemy.exc
from mlflow.exceptions import MlflowException
from prefect.cache_policies import NO_CACHE, TASK_SOURCE, CacheKeyFnPolicy
from prefect.context import TaskRunContext
from prefect.states import State
from prefect.tasks import exponential_backoff

from assay.errors import AssayError
from assay.provenance import code_digest
from assay.registry.tracking import reachable_store

# Failures of the outside world, which a later try can find gone: the disk and the network
# (OSError covers files, sockets, timeouts and `requests`' errors), httpx's transport, a database
# that is busy, and servers that answer "later" (below).
TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    OSError,
    httpx.TransportError,
    sqlalchemy.exc.OperationalError,
)
RETRY_LATER = 429  # Too Many Requests; with every 5xx answer


def is_transient(task: Any, task_run: Any, state: State) -> bool:
    """Retry outside-world failures only (an allow-list): never bad input or a failed gate,
    and never a programming error (a KeyError fails once, with its traceback)."""
    return transient(state.result(raise_on_failure=False))


def transient(error: BaseException | None) -> bool:
    """Whether `error`, or what it wraps (MLflow wraps the network error without `from`), is
    one a later try can succeed past."""
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None or isinstance(seen, AssayError):
            return False
        if isinstance(seen, TRANSIENT_TYPES) or _asks_to_retry(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _asks_to_retry(error: BaseException) -> bool:
    """An HTTP answer that means "not now": MLflow's and Prefect's 5xx and 429."""
    if isinstance(error, MlflowException):
        status = error.get_http_status_code()
    elif isinstance(error, httpx.HTTPStatusError):  # PrefectHTTPStatusError among them
        status = error.response.status_code
    else:
        return False
    return status >= 500 or status == RETRY_LATER


# For every task that reads or writes files, MLflow or the Prefect API: 1 s, 2 s, 4 s between
# tries. Combined with a cache policy on the expensive stages, with UNCACHED on the rest.
RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=1),
    "retry_condition_fn": is_transient,
}

# Steps with side effects or cheap results are not cached: their inputs (frames, suites) are
# not worth hashing, and a rerun must redo the side effect's check.
UNCACHED: dict[str, Any] = {"cache_policy": NO_CACHE}

IO_RETRIES: dict[str, Any] = {**UNCACHED, **RETRIES}


def fingerprint_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Key for pure, expensive stages: the stage's key (batches + the spec sections it reads, from
    assay.stages.table), the suite when the stage validates, the home the results' files live
    in, and the library's code. Frames passed alongside are derived from these, so leaving them
    out of the key loses nothing. Never None: Prefect would then key the record by the task's
    source alone, and any run of the task would hit it."""
    parts = [context.task.name, parameters["fingerprint"], parameters.get("suite_digest", "")]
    return "-".join([*parts, str(parameters["home"]), code_digest()])


# The task's own source joins the key, so editing a task invalidates its cache too. Results
# and cache records are JSON (Prefect's default is pickle): a cache hit reads data, never code.
CACHED: dict[str, Any] = {
    "cache_policy": CacheKeyFnPolicy(cache_key_fn=fingerprint_key) + TASK_SOURCE,
    "result_serializer": "json",
    **RETRIES,
}


Task = TypeVar("Task", bound=Callable[..., Any])


def names_unreachable_store(fn: Task) -> Task:
    """For tasks that talk to MLflow (they take `home`): a tracking server that does not answer
    fails the try with one line naming it, and the task's retries take it from there."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with reachable_store(signature.bind(*args, **kwargs).arguments["home"]):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
