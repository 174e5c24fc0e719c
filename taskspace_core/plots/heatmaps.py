"""Task-by-task heatmaps: one matrix with category bands, small multiples, mask locations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from taskspace_core.plots.style import DIVERGING, SEQUENTIAL, _symmetric_range, category_colors, esc


def task_heatmap(
    M: np.ndarray,
    names: Sequence[str],
    categories: Sequence[str],
    *,
    title: str = "",
    value_label: str = "value",
    diverging: bool = True,
    order: Sequence[int] | None = None,
    examples: Sequence[tuple[str, str]] | None = None,
    clip_diagonal: bool = False,
    intervals: tuple[np.ndarray, np.ndarray] | None = None,
    interval_note: str = "",
) -> go.Figure:
    """Heatmap of an N x N task matrix with category colour bands on both axes.

    ``intervals`` (low, high; N x N, file order) put each cell's 95% interval in its hover;
    without them, ``interval_note`` says there why (e.g. a first-order estimate).

    ``order`` reorders rows and columns (e.g. by clustering). ``diverging`` centres the
    colour scale at 0; ``clip_diagonal`` sets the colour range from off-diagonal values
    only (self-transfer is often 10x larger and would wash the rest out). Hover shows both
    tasks, the value and one example pair of each.
    """
    M = np.asarray(M, dtype=float)
    n = M.shape[0]
    idx = list(order) if order is not None else list(range(n))
    A = M[np.ix_(idx, idx)]
    nm = [esc(names[i]) for i in idx]  # escaped once: axis labels render HTML too
    cats = [str(categories[i]) for i in idx]
    ex = [examples[i] for i in idx] if examples is not None else [("", "")] * n
    colors = category_colors([str(c) for c in categories])

    # hover: row task (tuned / first), column task, value, one example pair each
    def hov(i: int) -> str:
        good, bad = ex[i]
        pair = f"<br>  ✓ {esc(good)}<br>  ✗ {esc(bad)}" if good or bad else ""
        return f"<b>{nm[i]}</b> ({esc(cats[i])}){pair}"

    text = [[f"row: {hov(i)}<br>col: {hov(j)}" for j in range(n)] for i in range(n)]
    if intervals is not None:
        lo, hi = (np.asarray(x, dtype=float)[np.ix_(idx, idx)] for x in intervals)
        extra = [[f"<br>95% interval [{lo[i, j]:.3f}, {hi[i, j]:.3f}]" for j in range(n)] for i in range(n)]
    else:
        extra = [[f"<br>{esc(interval_note)}" if interval_note else ""] * n for _ in range(n)]
    fig = make_subplots(
        rows=2,
        cols=2,
        column_widths=[0.035, 0.965],
        row_heights=[0.035, 0.965],
        horizontal_spacing=0.005,
        vertical_spacing=0.005,
        shared_xaxes=True,
        shared_yaxes=True,
    )
    zmax = _symmetric_range(A, clip_diagonal)
    heat = go.Heatmap(
        z=A,
        x=nm,
        y=nm,
        text=text,
        customdata=extra,
        hovertemplate="%{text}<br><b>" + esc(value_label) + " = %{z:.3f}</b>%{customdata}<extra></extra>",
        colorscale=DIVERGING if diverging else SEQUENTIAL,
        zmid=0 if diverging else None,
        zmin=-zmax if diverging else (None if not clip_diagonal else float(np.nanmin(A))),
        zmax=zmax if diverging or clip_diagonal else None,
        colorbar={"title": {"text": esc(value_label)}, "len": 0.5, "y": 1.0, "yanchor": "top"},
    )
    fig.add_trace(heat, row=2, col=2)
    _category_bands(fig, nm, cats, colors)
    _heatmap_axes_and_legend(fig, nm, n, colors, title)
    return fig


def _category_bands(fig: go.Figure, nm: list[str], cats: list[str], colors: dict[str, str]) -> None:
    """Category colour bands above and left of the matrix (one-row/one-column heatmaps)."""
    code = {c: k for k, c in enumerate(colors)}
    ncol = max(1, len(colors))
    scale = []
    for c, k in code.items():
        lo, hi = k / ncol, (k + 1) / ncol
        scale += [[lo, colors[c]], [hi, colors[c]]]
    codes = [code[c] + 0.5 for c in cats]
    band_kw = {
        "colorscale": scale,
        "zmin": 0,
        "zmax": ncol,
        "showscale": False,
        "hovertemplate": "%{text}<extra></extra>",
    }
    fig.add_trace(go.Heatmap(z=[codes], x=nm, y=["category"], text=[[esc(c) for c in cats]], **band_kw), row=1, col=2)
    fig.add_trace(
        go.Heatmap(z=[[c] for c in codes], x=["category"], y=nm, text=[[esc(c)] for c in cats], **band_kw),
        row=2,
        col=1,
    )


def _heatmap_axes_and_legend(fig: go.Figure, nm: list[str], n: int, colors: dict[str, str], title: str) -> None:
    """Axis labels on the matrix only, a legend of category colours, and a size for ~square cells."""
    fig.update_xaxes(ticks="", showgrid=False, zeroline=False)
    fig.update_yaxes(ticks="", showgrid=False, zeroline=False)
    fig.update_yaxes(autorange="reversed", row=2)
    fig.update_xaxes(showticklabels=False, row=1, col=2)
    fig.update_xaxes(showticklabels=False, row=2, col=1)
    fig.update_yaxes(showticklabels=False, row=1, col=2)
    fig.update_xaxes(tickangle=-90, row=2, col=2)  # slanted labels slide under the category band
    fig.update_yaxes(showticklabels=False, row=2, col=2)
    fig.update_yaxes(showticklabels=True, row=2, col=1)
    # legend of category colours (invisible scatter points)
    for c, col in colors.items():
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={"color": col, "size": 10, "symbol": "square"},
                name=esc(c),
                showlegend=True,
            ),
            row=2,
            col=2,
        )
    # vertical column labels need room below the plot (automargin alone clips them in PNG exports)
    label_room = min(320, 7 * max((len(x) for x in nm), default=0) + 20)
    side = max(560, 36 * n + 260) + label_room  # roughly square cells in a wide page
    fig.update_layout(
        title=esc(title),
        height=min(side, 1400),
        # category legend under the colour bar: below the plot it would cover the long task labels
        legend={"yanchor": "top", "y": 0.45, "x": 1.02, "title": {"text": "category"}},
        margin={"l": 10, "r": 10, "t": 50, "b": label_room},
        plot_bgcolor="white",
    )


def small_multiples(
    panels: Sequence[tuple[str, np.ndarray]],
    names: Sequence[str],
    *,
    n_cols: int,
    value_label: str = "lift",
    diverging: bool = False,
    title: str = "",
) -> go.Figure:
    """A grid of task-by-task heatmaps sharing one colour scale (e.g. sizes x checkpoints)."""
    n_rows = max(1, -(-len(panels) // max(1, n_cols)))
    fig = make_subplots(
        rows=n_rows,
        cols=n_cols,
        subplot_titles=[esc(t) for t, _ in panels],
        horizontal_spacing=0.03,
        vertical_spacing=0.08,
    )
    vals = np.concatenate([np.asarray(M, float)[~np.eye(len(M), dtype=bool)] for _, M in panels]) if panels else []
    vals = np.asarray(vals)[np.isfinite(vals)] if len(vals) else np.zeros(1)
    lo, hi = (
        (float(-np.abs(vals).max()), float(np.abs(vals).max())) if diverging else (float(vals.min()), float(vals.max()))
    )
    nm = [esc(x) for x in names]
    for k, (label, M) in enumerate(panels):
        A = np.array(M, dtype=float)
        np.fill_diagonal(A, np.nan)  # the diagonal (self overlap) would dominate the scale
        fig.add_trace(
            go.Heatmap(
                z=A,
                x=nm,
                y=nm,
                coloraxis="coloraxis",
                hovertemplate=esc(label) + "<br>%{y} × %{x}: %{z:.3f}<extra></extra>",
            ),
            row=k // n_cols + 1,
            col=k % n_cols + 1,
        )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_layout(
        title=esc(title),
        coloraxis={
            "colorscale": DIVERGING if diverging else SEQUENTIAL,
            "cmin": lo,
            "cmax": hi,
            "colorbar": {"title": {"text": esc(value_label)}},
        },
        height=260 * n_rows + 80,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
    )
    return fig


def mask_location_figure(dist: Mapping[str, object], *, title: str = "") -> go.Figure:
    """Where a task's FTGD mask lives: entries per layer (rows) and module type (columns)."""
    layers = [str(x) for x in dist.get("layers", [])]  # type: ignore[union-attr]
    modules = [str(x) for x in dist.get("modules", [])]  # type: ignore[union-attr]
    counts = np.asarray(dist.get("counts", []), dtype=float)
    if counts.size == 0:
        counts = np.zeros((len(layers), len(modules)))
    fig = go.Figure(
        go.Heatmap(
            z=counts,
            x=[esc(m) for m in modules],
            y=[f"layer {layer}" if layer.isdigit() else esc(layer) for layer in layers],  # also embed, final
            colorscale="Blues",
            hovertemplate="%{y}, %{x}: %{z:.0f} mask entries<extra></extra>",
            colorbar={"title": {"text": "entries"}},
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(
        title=esc(title), height=max(320, 24 * len(layers) + 140), margin={"l": 10, "r": 10, "t": 50, "b": 10}
    )
    return fig
