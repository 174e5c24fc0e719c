"""Dendrograms of a task space, leaves coloured by category."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from taskspace_core.plots.style import category_colors, esc


def dendrogram_figure(
    linkage_matrix: np.ndarray,
    names: Sequence[str],
    categories: Sequence[str],
    *,
    title: str = "",
    highlight: Sequence[str] = (),
) -> go.Figure:
    """Horizontal dendrogram (leaves on the y axis) with leaves coloured by category;
    leaves named in ``highlight`` get a ring and a bold label."""
    from scipy.cluster.hierarchy import dendrogram  # light, but only needed here

    n = len(names)
    colors = category_colors(list(categories))
    fig = go.Figure()
    if n < 2 or len(linkage_matrix) == 0:
        order = list(range(n))
    else:
        d = dendrogram(linkage_matrix, no_plot=True, labels=list(range(n)))
        order = [int(i) for i in d["leaves"]]
        xs: list[float | None] = []
        ys: list[float | None] = []
        for ic, dc in zip(d["icoord"], d["dcoord"], strict=True):
            xs += [*dc, None]
            ys += [*ic, None]
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines", line={"color": "#555", "width": 1.5}, hoverinfo="skip", showlegend=False
            )
        )
    ypos = [5 + 10 * k for k in range(n)]  # scipy places leaves at 5, 15, 25, ...
    for cat, col in colors.items():
        ids = [k for k, i in enumerate(order) if categories[i] == cat]
        fig.add_trace(
            go.Scatter(
                x=[0] * len(ids),
                y=[ypos[k] for k in ids],
                mode="markers",
                marker={"size": 12, "color": col, "symbol": "square"},
                name=esc(cat),
                text=[esc(names[order[k]]) for k in ids],
                hovertemplate="%{text}<br>" + esc(cat) + "<extra></extra>",
            )
        )
    marked = [k for k, i in enumerate(order) if names[i] in set(highlight)]
    if marked:
        fig.add_trace(
            go.Scatter(
                x=[0] * len(marked),
                y=[ypos[k] for k in marked],
                mode="markers",
                marker={"size": 22, "symbol": "circle-open", "color": "#d62728", "line": {"width": 3}},
                name="added",
                text=[esc(names[order[k]]) for k in marked],
                hovertemplate="%{text} (added)<extra></extra>",
            )
        )
    # leaves at x = 0 next to their labels; labels take their category colour (added ones in bold)
    ticktext = [
        f'<span style="color:{colors[categories[i]]}">{_bold(esc(names[i]), names[i] in set(highlight))}</span>'
        for i in order
    ]
    fig.update_yaxes(tickvals=ypos, ticktext=ticktext, autorange="reversed", showgrid=False, zeroline=False)
    fig.update_xaxes(title="distance 1 - S (average linkage)", zeroline=False)
    fig.update_layout(
        title=esc(title),
        height=max(380, 26 * n + 140),
        legend={"title": {"text": "category"}},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        plot_bgcolor="white",
    )
    return fig


def _bold(text: str, on: bool) -> str:
    return f"<b>{text}</b>" if on else text
