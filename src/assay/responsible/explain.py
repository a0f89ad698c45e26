"""Per-row Shapley attributions of the shipped model, and the global importance they add up to.

Interventional SHAP: a feature's value on a row is its average marginal contribution to the
calibrated positive-class probability over orderings of the features, where a feature "absent"
from a coalition takes the value of a background row drawn from training (the shap library's
PermutationExplainer with an Independent masker, which accepts any predict function, an
onnxruntime session included). Each permutation is run forward and backward, so the values of
every row add up exactly to its prediction minus the base value (the mean prediction over the
background rows), whatever the number of permutations. A feature whose value on a row equals
every background row's gets 0 there, and a feature the model ignores gets 0 everywhere.

Occlusion (marking a cell missing) was replaced because a column that is never missing in
training has an [NA] token training never updated: on Adult capital_gain looked ten times more
important than anything else. Interventional SHAP only ever hands the model values it saw.

Anything that maps a frame to probabilities can be explained (OnnxScorer.predict_proba fits), so
this module needs neither torch nor onnxruntime; matplotlib loads only when a plot is drawn.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

Scorer = Callable[[pd.DataFrame], np.ndarray]  # positive-class probability per row, in order


@dataclass(frozen=True)
class Shapley:
    """Per-row values (index and order of the explained rows, one column per feature), the
    base value they start from, and the prediction each row's values add up to."""

    values: pd.DataFrame
    base: float
    predictions: np.ndarray


def shapley_values(
    score: Scorer,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    columns: list[str],
    *,
    permutations: int = 1,
    seed: int = 0,
) -> Shapley:
    """Interventional SHAP of `score` on `rows` over `columns`, absent features drawn from
    every row of `background`. The cost is about len(rows) * (2 * len(columns) + 1) *
    len(background) * permutations scored rows, in one batched call per explained row."""
    import shap

    absent = [c for c in columns if c not in rows.columns or c not in background.columns]
    if absent:
        raise KeyError(
            f"shapley_values: column(s) {absent} are missing from the rows or background"
        )
    codes = _Codes(pd.concat([rows[columns], background[columns]]))

    def predict(masked: np.ndarray) -> np.ndarray:
        return _probabilities(score, codes.decode(masked))

    masker = shap.maskers.Independent(codes.encode(background), max_samples=len(background))
    explainer = shap.PermutationExplainer(predict, masker, seed=seed)
    explained = explainer(
        codes.encode(rows), max_evals=permutations * (2 * len(columns) + 1), silent=True
    )
    values = pd.DataFrame(explained.values, columns=columns, index=rows.index)
    base = float(np.mean(explained.base_values))
    return Shapley(values, base, base + values.sum(axis=1).to_numpy())


class _Codes:
    """Cells as numbers for shap's masker, which compares cells with np.isclose: numeric
    columns as they are, every other column as the code of its value (missing is a value
    too), decoded back to the column's own values and dtype before the model sees a row."""

    def __init__(self, cells: pd.DataFrame) -> None:
        self.columns = list(cells.columns)
        self.dtypes = cells.dtypes.to_dict()
        self.values = {
            c: pd.factorize(cells[c], use_na_sentinel=False)[1]
            for c in self.columns
            if not pd.api.types.is_numeric_dtype(cells[c])
        }

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack(
            [
                pd.Index(self.values[c]).get_indexer(frame[c]).astype(np.float64)
                if c in self.values
                else frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
                for c in self.columns
            ]
        )

    def decode(self, numbers: np.ndarray) -> pd.DataFrame:
        numbers = np.atleast_2d(numbers)
        return pd.DataFrame(
            {
                c: pd.Series(
                    self.values[c].take(numbers[:, i].astype(np.int64))
                    if c in self.values
                    else numbers[:, i],
                    dtype=self.dtypes[c],
                )
                for i, c in enumerate(self.columns)
            }
        )


def _probabilities(score: Scorer, frame: pd.DataFrame) -> np.ndarray:
    """The scorer's output, checked to be one number per row: a scorer that returned both class
    columns would otherwise broadcast into nonsense attributions without an error."""
    out = np.asarray(score(frame), dtype=np.float64)
    if out.shape != (len(frame),):
        raise ValueError(
            f"shapley_values: the scorer returned shape {out.shape} for {len(frame)} rows; it "
            "must return one positive-class probability per row (e.g. OnnxScorer.predict_proba)"
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
            "rows in the same order; pass the values shapley_values() returned for this frame"
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
    axes.set_xlabel("mean |SHAP value| (positive-class probability)")
    axes.set_title("Feature importance: mean |SHAP| on the shipped model")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def dependence_plot(
    frame: pd.DataFrame, values: pd.DataFrame, features: list[str], path: Path
) -> Path:
    """One panel per feature: each explained row's SHAP value against the feature's value
    (numbers on a numeric axis, categories in order of their mean SHAP value)."""
    from assay.responsible.plots import new_grid

    figure, grid = new_grid(len(features), 3.2, 2.6)
    for axes, name in zip(grid, features, strict=False):
        cells, shap = frame[name], values[name].to_numpy()
        if pd.api.types.is_numeric_dtype(cells):
            axes.scatter(cells.to_numpy(dtype=float, na_value=np.nan), shap, s=4, alpha=0.4)
        else:
            labels = cells.astype("string").fillna("(missing)")
            order = _by_mean(labels, shap)
            position = labels.map({v: i for i, v in enumerate(order)}).to_numpy(dtype=float)
            axes.scatter(position, shap, s=4, alpha=0.4)
            axes.set_xticks(range(len(order)), [str(v)[:12] for v in order], rotation=90)
            axes.tick_params(axis="x", labelsize=6)
        axes.axhline(0.0, color="grey", linewidth=0.5)
        axes.set_title(name, fontsize=9)
        axes.set_ylabel("SHAP value", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _by_mean(labels: pd.Series, shap: np.ndarray) -> list[str]:
    """Categories by their mean SHAP value, lowest first (ties by name)."""
    means = pd.Series(shap, index=labels.index).groupby(labels.to_numpy()).mean()
    return sorted(means.index, key=lambda v: (means[v], str(v)))
