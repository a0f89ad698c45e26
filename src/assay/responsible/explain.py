"""Per-row feature attribution by occlusion, and the global importance it adds up to.

A feature's attribution on a row is how much the positive-class probability drops when that
cell is made missing: score(row) - score(row with the cell missing). Missing is written the way
the reader writes it (NaN for numbers, pd.NA for text), so the record tokenizer hands the model
its own "unknown" input rather than a made-up fill value: the column's [NA] token for a
categorical or numeric cell (a numeric cell also loses its rank feature), and an empty, fully
masked span for a text cell (text has no [NA] token). Caveat: a column that was never missing in
training has an [NA] embedding training never updated, so its attributions measure the model's
reaction to an unfamiliar token, not only the loss of the value.

Anything that maps a frame to probabilities can be explained (OnnxScorer.predict_proba fits), so
this module needs neither torch nor onnxruntime; matplotlib loads only when a plot is drawn.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

Scorer = Callable[[pd.DataFrame], np.ndarray]  # positive-class probability per row, in order


def occlusion(score: Scorer, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Attribution of each of `columns` on each row of `frame` (index kept, one column each).

    The scorer runs once on the frame and once per column on the whole occluded frame, so the
    cost is len(columns) + 1 batched calls, never one call per row."""
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise KeyError(
            f"occlusion: column(s) {absent} are not in the frame; it has {list(frame.columns)}"
        )
    base = _probabilities(score, frame)
    return pd.DataFrame(
        {c: base - _probabilities(score, _occluded(frame, c)) for c in columns}, index=frame.index
    )


def _occluded(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """A copy with every cell of `column` missing, in the column's own dtype (NaN in float64,
    pd.NA in string), exactly as the reader gives a missing cell."""
    return frame.assign(**{column: frame[column].mask(np.ones(len(frame), dtype=bool))})


def _probabilities(score: Scorer, frame: pd.DataFrame) -> np.ndarray:
    """The scorer's output, checked to be one number per row: a scorer that returned both class
    columns would otherwise broadcast into nonsense attributions without an error."""
    out = np.asarray(score(frame), dtype=np.float64)
    if out.shape != (len(frame),):
        raise ValueError(
            f"occlusion: the scorer returned shape {out.shape} for {len(frame)} rows; it must "
            "return one positive-class probability per row (e.g. OnnxScorer.predict_proba)"
        )
    return out


def global_importance(attributions: pd.DataFrame) -> pd.Series:
    """Mean absolute attribution per feature, largest first. Absolute, because a feature that
    pushes some rows up and others down matters even when its signed mean is near zero."""
    means = attributions.abs().mean()
    return means.sort_values(ascending=False, kind="stable").rename("importance")


def example_explanations(
    frame: pd.DataFrame,
    attributions: pd.DataFrame,
    probabilities: np.ndarray,
    rows: int = 3,
    top: int = 3,
) -> list[dict]:
    """A few rows a reviewer asks about first, each with its `top` features by |attribution|.

    Rows, in this order: the most confident positive, the most confident negative, then the
    rows closest to 0.5. Ties go to the earlier row, so the same inputs give the same examples.
    Everything returned is plain Python (int, float, str, None), ready for json.dumps."""
    p = np.asarray(probabilities, dtype=np.float64)
    if rows < 0 or top < 0:
        raise ValueError(f"example_explanations: rows ({rows}) and top ({top}) must be >= 0")
    if not attributions.index.equals(frame.index) or len(p) != len(frame):
        raise ValueError(
            f"example_explanations: frame ({len(frame)} rows), attributions "
            f"({len(attributions)} rows) and probabilities ({len(p)}) must describe the same "
            "rows in the same order; pass the attributions occlusion() returned for this frame"
        )
    return [_explain(frame, attributions, p, i, top) for i in _example_positions(p, rows)]


def _example_positions(p: np.ndarray, rows: int) -> list[int]:
    """Row positions in priority order, without repeats (one row can be both extremes)."""
    if len(p) == 0:
        return []
    uncertain = np.argsort(np.abs(p - 0.5), kind="stable").tolist()
    order = dict.fromkeys([int(np.argmax(p)), int(np.argmin(p)), *uncertain])
    return list(order)[:rows]


def _explain(
    frame: pd.DataFrame, attributions: pd.DataFrame, p: np.ndarray, position: int, top: int
) -> dict:
    row = attributions.iloc[position]
    strongest = row.abs().sort_values(ascending=False, kind="stable").index[:top]
    return {
        "row": _plain(frame.index[position]),
        "probability": float(p[position]),
        "features": [
            {
                "feature": str(name),
                "value": _plain(frame[name].iloc[position]),
                "attribution": float(row[name]),
            }
            for name in strongest
        ],
    }


def _plain(value: object) -> int | float | str | None:
    """A cell or index label as JSON can hold it: missing -> None, numbers stay numbers."""
    if pd.isna(value):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


def importance_plot(importance: pd.Series, path: Path, top: int = 10) -> Path:
    """A PNG of the `top` features as horizontal bars, the most important at the top."""
    from assay.responsible.plots import new_axes

    shown = importance.nlargest(top).iloc[::-1]  # barh draws the first bar at the bottom
    figure, axes = new_axes(6.0, 1.2 + 0.35 * len(shown))
    axes.barh([str(name) for name in shown.index], shown.to_numpy())
    axes.set_xlabel("mean |change in positive-class probability| when the feature is missing")
    axes.set_title("Feature importance by occlusion")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
