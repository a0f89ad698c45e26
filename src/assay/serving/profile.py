"""The reference profile: what the training rows looked like, saved beside the model so that a
later batch can be compared with it without the training data at hand. A served model records
its traffic as profiles of the same kind (assay.serving.traffic).

Numeric columns keep quantile bin edges with the share of rows per bin (for PSI) and a seeded
sample of values (for the KS test); categorical columns keep the share per category. Text
columns are skipped: a free-text cell has no distribution that PSI or a test could compare.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from assay.config import Spec
from assay.data.atomic import write_json_atomic
from assay.errors import AssayError

MISSING = "<missing>"
OTHER = "<other>"
MAX_CATEGORIES = 50  # beyond this a category is too rare to move PSI; fold it into OTHER
SAMPLE_ROWS = 5_000  # enough for the KS test to see a small shift, small enough to store


@dataclass(frozen=True)
class NumericProfile:
    """Bins are right-closed: bin i holds edges[i-1] < x <= edges[i], so a column that is mostly
    one value (capital_gain: 0) puts that value in a bin of its own."""

    edges: list[float]  # inner edges; len(edges) + 1 bins
    shares: list[float]  # share of all rows per bin
    missing: float  # share of rows without a value
    sample: list[float]  # seeded sample of non-missing values


@dataclass(frozen=True)
class CategoricalProfile:
    shares: dict[str, float]  # per category, plus OTHER and MISSING (always present)


@dataclass(frozen=True)
class ReferenceProfile:
    rows: int
    label_rate: float | None  # share of positive labels; None without labelled rows
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    prediction: NumericProfile | None  # the model's P(positive) on the reference rows

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> ReferenceProfile:
        prediction = raw["prediction"]
        return cls(
            rows=raw["rows"],
            label_rate=raw["label_rate"],
            numeric={k: NumericProfile(**v) for k, v in raw["numeric"].items()},
            categorical={k: CategoricalProfile(**v) for k, v in raw["categorical"].items()},
            prediction=NumericProfile(**prediction) if prediction else None,
        )

    def save(self, path: Path) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> ReferenceProfile:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise AssayError(f"{path}: reference profile not found") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AssayError(f"{path}: not a reference profile ({exc!r})") from None


def numbers(values: pd.Series | np.ndarray) -> np.ndarray:
    """Float64 with NaN for missing, whatever the input's dtype."""
    return pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan)


def bin_shares(values: np.ndarray, edges: list[float]) -> tuple[np.ndarray, float]:
    """Share of all rows per right-closed bin, and the share of missing rows."""
    present = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    total = max(len(values), 1)
    return counts / total, (len(values) - len(present)) / total


def categories(values: pd.Series, known: set[str] | None = None) -> pd.Series:
    """Cells as category strings: missing -> MISSING, and, given the known categories, every
    other value -> OTHER."""
    text = values.astype("string").fillna(MISSING)
    if known is None:
        return text
    return text.where(text.isin(known) | (text == MISSING), OTHER)


def numeric_profile(values: pd.Series | np.ndarray, bins: int, seed: int) -> NumericProfile:
    """Quantile edges, deduplicated: ties in a mostly-constant column collapse into one edge."""
    values = numbers(values)
    present = values[~np.isnan(values)]
    quantiles = np.linspace(0, 1, bins + 1)[1:-1]
    edges = np.unique(np.quantile(present, quantiles)) if present.size else np.empty(0)
    shares, missing = bin_shares(values, list(edges))
    rng = np.random.default_rng(seed)
    sample = rng.choice(present, size=min(SAMPLE_ROWS, present.size), replace=False)
    return NumericProfile(
        edges=[float(e) for e in edges],
        shares=[float(s) for s in shares],
        missing=float(missing),
        sample=[float(v) for v in sample],
    )


def categorical_profile(values: pd.Series) -> CategoricalProfile:
    """The MAX_CATEGORIES most frequent categories (ties by name, so the profile is stable)."""
    counts = categories(values).value_counts()
    missing = int(counts.pop(MISSING)) if MISSING in counts.index else 0
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = ranked[:MAX_CATEGORIES]
    other = sum(int(n) for _, n in ranked[MAX_CATEGORIES:])
    total = max(len(values), 1)
    shares = {str(name): int(n) / total for name, n in kept}
    return CategoricalProfile({**shares, OTHER: other / total, MISSING: missing / total})


def build_profile(
    frame: pd.DataFrame, spec: Spec, scores: np.ndarray | None = None
) -> ReferenceProfile:
    """The profile of the training rows, and of the model's scores on them when given.
    Deterministic: samples are seeded by spec.split.seed."""
    if scores is not None and len(scores) != len(frame):
        raise AssayError(f"{len(scores)} scores for {len(frame)} reference rows")
    bins, seed = spec.monitoring.bins, spec.split.seed
    return ReferenceProfile(
        rows=len(frame),
        label_rate=_label_rate(frame, spec),
        numeric={c: numeric_profile(frame[c], bins, seed) for c in spec.columns_of_type("numeric")},
        categorical={c: categorical_profile(frame[c]) for c in spec.columns_of_type("categorical")},
        prediction=numeric_profile(scores, bins, seed) if scores is not None else None,
    )


def _label_rate(frame: pd.DataFrame, spec: Spec) -> float | None:
    if spec.label.column not in frame:
        return None
    labelled = frame[spec.label.column].dropna()
    return float((labelled == spec.label.positive).mean()) if len(labelled) else None
