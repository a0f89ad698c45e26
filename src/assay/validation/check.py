"""Run a Great Expectations suite on a frame and sort the outcome by severity.

Critical expectations decide whether data is accepted; warnings are reported and stored with
the batch. The report is a plain value (no GE objects) so it can be saved, shown and compared.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from assay.data.reader import one_line
from assay.validation.suite import gx

# In memory only: no progress bars in logs, and no temporary Data Docs folder outside ASSAY_HOME
# (assay writes its own report, see validation/report.py).
_QUIET_IN_MEMORY = DataContextConfig(
    store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    progress_bars=ProgressBarsConfig(globally=False),
)


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict, flattened from GE's result."""

    expectation: str
    column: str | None
    severity: str
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    examples: list[Any] = field(default_factory=list)
    observed: Any = None
    error: str | None = None

    def describe(self) -> str:
        """One line a person can act on, e.g. "workclass: 4.20% unexpected (e.g. 'Robot')"."""
        where = f"column '{self.column}'" if self.column else "table"
        name = self.expectation.removeprefix("expect_")
        if self.error:
            return f"{where} {name}: {self.error}"
        detail = ""
        if self.unexpected_percent is not None:
            detail = f": {self.unexpected_percent:.2f}% unexpected"
            examples = list(dict.fromkeys(map(repr, self.examples)))[:3]
            if examples:
                detail += " (e.g. " + ", ".join(examples) + ")"
        elif self.observed is not None:
            detail = f": observed {self.observed!r}"
        return f"{where} {name}{detail}"


@dataclass(frozen=True)
class ValidationReport:
    """All outcomes of one suite on one frame."""

    suite: str
    rows: int
    outcomes: tuple[ExpectationOutcome, ...]

    @property
    def critical_failures(self) -> list[ExpectationOutcome]:
        """Failed critical expectations, the most severe first: a table-level failure (row
        count, columns), then the largest unexpected share; ties keep the suite's order."""
        failed = [o for o in self.outcomes if not o.success and o.severity == "critical"]
        return sorted(
            failed, key=lambda o: -(100.0 if o.unexpected_percent is None else o.unexpected_percent)
        )

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity != "critical"]

    @property
    def passed(self) -> bool:
        return not self.critical_failures

    def table(self) -> list[dict]:
        """One row per expectation, as the Prefect UI's validation table shows them."""
        return [
            {
                "result": "pass" if o.success else "FAIL",
                "severity": o.severity,
                "expectation": o.expectation,
                "column": o.column or "",
                "detail": one_line(o.describe()),
            }
            for o in self.outcomes
        ]

    @property
    def reason(self) -> str:
        """The one-line verdict: the most severe critical failure, and how many more."""
        failures = self.critical_failures
        if not failures:
            return f"passed ({len(self.outcomes)} expectations, {len(self.warnings)} warnings)"
        more = f" (+{len(failures) - 1} more critical)" if len(failures) > 1 else ""
        return f"failed critical expectation: {failures[0].describe()}{more}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "rows": self.rows,
            "passed": self.passed,
            "reason": self.reason,
            "outcomes": [asdict(o) for o in self.outcomes],
        }


def check(
    frame: pd.DataFrame, suite: gx.ExpectationSuite, optional: tuple[str, ...] = ()
) -> ValidationReport:
    """Validate frame against suite with an ephemeral GE context (no files written).
    `optional` columns may be absent (the label of an unlabelled batch): expectations about
    an absent one are left out, and it is not required by a column-set expectation."""
    absent = {c for c in optional if c not in frame.columns}
    context = gx.get_context(mode="ephemeral", project_config=_QUIET_IN_MEMORY)
    batch_definition = (
        context.data_sources.add_pandas("assay")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
    )
    local_suite = context.suites.add(
        gx.ExpectationSuite(name=suite.name, expectations=_applicable(suite, absent))
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name=f"{suite.name}-check", data=batch_definition, suite=local_suite
        )
    )
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    return ValidationReport(
        suite=suite.name, rows=len(frame), outcomes=tuple(_outcome(r) for r in result.results)
    )


def _applicable(suite: gx.ExpectationSuite, absent: set[str]) -> list[Any]:
    """Copies of the suite's expectations, less those about an absent optional column."""
    kept = []
    for expectation in suite.expectations:
        if getattr(expectation, "column", None) in absent:
            continue
        copy = expectation.copy()
        if absent and getattr(copy, "column_set", None) is not None:
            copy.column_set = [c for c in copy.column_set if c not in absent]
        kept.append(copy)
    return kept


def _outcome(result: Any) -> ExpectationOutcome:
    config = result.expectation_config
    stats = result.result or {}
    info = result.exception_info or {}
    error = info.get("exception_message") if info.get("raised_exception") else None
    return ExpectationOutcome(
        expectation=config.type,
        column=config.kwargs.get("column"),
        severity=str(getattr(config.severity, "value", config.severity)),
        success=bool(result.success),
        unexpected_count=stats.get("unexpected_count"),
        unexpected_percent=stats.get("unexpected_percent"),
        examples=[_plain(v) for v in stats.get("partial_unexpected_list", [])[:5]],
        observed=_plain(stats.get("observed_value")),
        error=error.splitlines()[0] if error else None,
    )


def _plain(value: Any) -> Any:
    """JSON-safe copy of a GE value (numpy scalars become Python ones, anything odd a string)."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "item"):
        value = value.item()
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)
