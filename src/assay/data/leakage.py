"""The leakage guard: test rows that also appear among the training, validation or calibration
rows make every test figure optimistic (the model has seen the answer). Before training, rows whose
feature cells and label are identical across the two sides are counted, and the batches that
hold them named, so a run that cannot be trusted fails before it spends time training.

Duplicates inside the training rows are reported too: they weight some rows twice, which is
worth knowing but does not make the test figures wrong."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from assay.config import Spec
from assay.data.fingerprint import row_keys
from assay.data.split import Split
from assay.data.store import BatchRecord


@dataclass(frozen=True)
class LeakageReport:
    """How many test rows equal a training, validation or calibration row, and from where."""

    test_rows: int
    leaked_rows: int  # test rows whose features and label equal a train/validation row
    training_duplicates: int  # train/validation rows that repeat an earlier one exactly
    batches: list[dict]  # {batch, source, rows}: batches holding the leaked rows
    max_share: float

    @property
    def share(self) -> float:
        return self.leaked_rows / self.test_rows if self.test_rows else 0.0

    @property
    def passed(self) -> bool:
        return self.share <= self.max_share

    @property
    def reason(self) -> str:
        found = (
            f"{self.leaked_rows:,} of {self.test_rows:,} test rows ({100 * self.share:.2f}%) "
            f"equal a training, validation or calibration row (limit {100 * self.max_share:.2f}%)"
        )
        if self.passed:
            return f"passed: {found}; {self.training_duplicates:,} duplicate training rows"
        where = ", ".join(f"{b['batch'][:12]} ({b['source']}, {b['rows']:,})" for b in self.batches)
        return (
            f"leakage gate failed: {found}; batches holding them: {where}. Retire a batch that "
            "repeats another (`assay batches retire ID --reason ...`), or raise "
            "gates.leakage.max_share if the duplicates are genuine"
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "share": self.share, "passed": self.passed, "reason": self.reason}


def find_leakage(
    batches: list[tuple[BatchRecord, pd.DataFrame]], split: Split, spec: Spec
) -> LeakageReport:
    columns = spec.example_columns
    # a copy in the calibration rows leaks too: the conformal quantile would be fit on it
    fitted = [split.train, split.valid, split.calibration]
    seen = row_keys(pd.concat(fitted, ignore_index=True), columns)
    test = row_keys(split.test, columns)
    leaked = np.intersect1d(test, seen)
    involved = []
    for record, frame in batches:
        rows = int(np.isin(row_keys(frame, columns), leaked).sum())
        if rows:
            involved.append({"batch": record.hash, "source": record.source, "rows": rows})
    return LeakageReport(
        test_rows=len(test),
        leaked_rows=int(np.isin(test, leaked).sum()),
        training_duplicates=int(pd.Series(seen).duplicated().sum()),
        batches=involved,
        max_share=spec.gates.leakage.max_share,
    )
