"""Errors that describe bad input or a failed gate.

They are final: retrying the same input gives the same answer, so the Prefect shell does not
retry them. The shell retries only the outside world's failures (OSError, a store that is down,
a server answering 5xx: the allow-list in tasks/policy.py).
"""


class AssayError(Exception):
    """Base for problems with the input, the spec or a gate; the message is for the user."""


class SpecError(AssayError):
    """The dataset spec is missing, malformed, or names something that does not exist."""


class ReadError(AssayError):
    """A data file cannot be parsed into the spec's columns and types."""


class GateFailed(AssayError):
    """A gate (data, leakage, quality, fairness, decision, compression) rejected the candidate.
    `summary` is the run's summary (metrics, every gate) when training got that far."""

    def __init__(self, reason: str, summary: str = "") -> None:
        super().__init__(reason)
        self.summary = summary

    def __reduce__(self) -> tuple:
        return (type(self), (str(self), self.summary))


class StoreUnreachable(ConnectionError):
    """The MLflow tracking server did not answer. Transient, so not an AssayError: the shell
    retries it with backoff; the message, once retries are spent, is for the user."""


class SiteFailed(AssayError):
    """A federation site did not answer a round (its run failed, or no worker took it in
    time); the message names the site, the round and why."""
