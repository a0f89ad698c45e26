"""Which failures a task retries: an allow-list of the outside world's (disk, network, busy
stores, servers that say "later"), never bad input, a failed gate or a programming error."""

from __future__ import annotations

import errno

import httpx
import pytest
import sqlalchemy.exc
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE

from assay.errors import GateFailed, SpecError, StoreUnreachable
from tasks.policy import transient


def answered(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://prefect/api/flow_runs/")
    return httpx.HTTPStatusError(
        "", request=request, response=httpx.Response(status, request=request)
    )


def wrapped(inner: BaseException) -> BaseException:
    """As MLflow does: a new error raised while handling the network one, without `from`."""
    try:
        try:
            raise inner
        except BaseException:
            raise MlflowException("API request failed", INVALID_PARAMETER_VALUE) from None
    except MlflowException as exc:
        exc.__context__ = inner
        return exc


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        ConnectionError("reset"),
        TimeoutError("slow"),
        StoreUnreachable("the tracking server did not answer"),
        httpx.ConnectError("refused"),
        sqlalchemy.exc.OperationalError("UPDATE", {}, Exception("database is locked")),
        MlflowException("try later", TEMPORARILY_UNAVAILABLE),
        answered(503),
        answered(429),
        wrapped(ConnectionError("refused")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_outside_world_is_retried(error):
    assert transient(error)


@pytest.mark.parametrize(
    "error",
    [
        KeyError("column"),
        ValueError("bad shape"),
        TypeError("None is not a frame"),
        SpecError("bad spec"),
        GateFailed("fairness gate failed"),
        MlflowException("no such run", INVALID_PARAMETER_VALUE),
        answered(404),
        None,
    ],
    ids=lambda e: type(e).__name__,
)
def test_bad_input_a_failed_gate_and_programming_errors_are_not(error):
    assert not transient(error)
