"""PNG plots for the report: drawn on a bare matplotlib Figure with an Agg canvas, so no pyplot
global state, no display, and matplotlib loads only when a plot is made (the predictor, which
imports this package, never draws)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any


def new_axes(width: float, height: float) -> tuple[Any, Any]:
    """(figure, axes) on an Agg canvas."""
    figure, (axes,) = new_grid(1, width, height)
    return figure, axes


def new_grid(panels: int, width: float, height: float, columns: int = 3) -> tuple[Any, list]:
    """(figure, axes per panel) in rows of `columns`, each panel width x height inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    across = max(1, min(columns, panels))
    down = max(1, -(-panels // across))
    figure = Figure(figsize=(width * across, height * down))
    FigureCanvasAgg(figure)
    grid = figure.subplots(down, across, squeeze=False).ravel()
    for unused in grid[panels:]:
        unused.set_visible(False)
    return figure, list(grid[:panels])


def tradeoff_plot(rows: list[dict], feature: str, path: Path) -> Path:
    """Accuracy against the equalized-odds and demographic-parity differences on `feature`,
    one point per mitigation option."""
    figure, axes = new_axes(6.0, 4.5)
    for metric, marker in (
        ("equalized_odds_difference", "o"),
        ("demographic_parity_difference", "s"),
    ):
        xs = [row[f"{metric} ({feature})"] for row in rows]
        ys = [row["accuracy"] for row in rows]
        axes.scatter(xs, ys, marker=marker, label=metric.replace("_", " "))
        for row, x, y in zip(rows, xs, ys, strict=True):
            axes.annotate(
                row["option"], (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points"
            )
    axes.set_xlabel(f"disparity on {feature} (test)")
    axes.set_ylabel("accuracy (test)")
    axes.set_title("Mitigation trade-off")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def group_plot(groups: list[dict], feature: str, path: Path) -> Path:
    """Selection rate, TPR and FPR per group of one sensitive feature (small groups marked *)."""
    figure, axes = new_axes(max(5.0, 1.3 * len(groups) + 2), 4.5)
    metrics = ("selection_rate", "true_positive_rate", "false_positive_rate")
    width = 0.8 / len(metrics)
    for i, metric in enumerate(metrics):
        xs = [j + (i - 1) * width for j in range(len(groups))]
        axes.bar(xs, [g[metric] for g in groups], width, label=metric.replace("_", " "))
    labels = [
        f"{g['group'].replace(' x ', chr(10))}{'*' if g['small'] else ''}\nn={int(g['count'])}"
        for g in groups
    ]
    axes.set_xticks(range(len(groups)), labels, fontsize=7)
    axes.set_ylim(0, 1)
    axes.set_title(f"Shipped decisions by {feature} (test; * = small group)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def png_data_url(path: Path) -> str:
    """The PNG inline as a data: URL, for a UI that cannot read this machine's files."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
