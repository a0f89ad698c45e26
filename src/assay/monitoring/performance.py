"""Live performance: once new rows get their labels, how the champion's decisions on them compare
with its test accuracy, and how fair they are. Drift in the inputs only hints at a problem;
this is the problem itself, measured."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from assay.config import Spec
from assay.data.labels import labels
from assay.errors import AssayError
from assay.serving.groups import sensitive_columns


@dataclass(frozen=True)
class LivePerformance:
    rows: int  # labelled rows measured
    accuracy: float
    reference_accuracy: float  # the champion's accuracy on the test split
    accuracy_drop: float  # the largest drop allowed (spec.monitoring.accuracy_drop)
    fairness: dict[str, dict[str, float]]  # sensitive feature -> disparity -> value

    @property
    def drop(self) -> float:
        return self.reference_accuracy - self.accuracy

    @property
    def degraded(self) -> bool:
        return self.drop > self.accuracy_drop

    @property
    def reason(self) -> str:
        verdict = "more than" if self.degraded else "within"
        return (
            f"live accuracy {self.accuracy:.4f} on {self.rows:,} labelled rows, "
            f"{verdict} {self.accuracy_drop:.4g} below the champion's {self.reference_accuracy:.4f}"
        )

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "drop": self.drop,
            "degraded": self.degraded,
            "reason": self.reason,
        }


def live_performance(
    frame: pd.DataFrame, decisions: np.ndarray, spec: Spec, reference_accuracy: float
) -> LivePerformance | None:
    """Accuracy and disparities of the 0/1 decisions on the rows of `frame` that carry a label
    (one decision per row of `frame`). None when no row is labelled: nothing to measure yet.
    Disparities are per sensitive feature, and for their intersection when there are several."""
    if len(decisions) != len(frame):
        raise AssayError(f"{len(decisions)} decisions for {len(frame)} rows")
    if spec.label.column not in frame:
        return None
    labelled = frame[spec.label.column].notna().to_numpy(dtype=bool)
    if not labelled.any():
        return None
    rows = frame[labelled].reset_index(drop=True)
    y, predicted = labels(rows, spec), np.asarray(decisions, dtype=np.int64)[labelled]
    fairness = {
        name: {
            "equalized_odds_difference": float(
                equalized_odds_difference(y, predicted, sensitive_features=groups)
            ),
            "demographic_parity_difference": float(
                demographic_parity_difference(y, predicted, sensitive_features=groups)
            ),
        }
        for name, groups in sensitive_columns(rows, spec.sensitive_features).items()
    }
    return LivePerformance(
        rows=len(rows),
        accuracy=float(np.mean(y == predicted)),
        reference_accuracy=reference_accuracy,
        accuracy_drop=spec.monitoring.accuracy_drop,
        fairness=fairness,
    )
