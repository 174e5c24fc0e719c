"""2-D maps of the tasks (MDS/UMAP layouts), animated across models."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from taskspace_core.plots.style import category_colors, esc


def embedding_figure(
    layouts: Sequence[tuple[str, np.ndarray]],
    names: Sequence[str],
    labels: Sequence[str],
    *,
    level: str = "category",
    hover: Sequence[str] | None = None,
    title: str = "",
    highlight: Sequence[str] = (),
) -> go.Figure:
    """2-D layout(s) of the tasks coloured by a hypothesis level.

    With several layouts (checkpoints or sizes, already Procrustes-aligned), a slider
    and play button step through them; points keep their identity, so they move smoothly.
    Tasks named in ``highlight`` (e.g. just placed ones) get a large ring on top of their point.
    """
    colors = category_colors(list(labels))
    hov = list(hover) if hover is not None else [esc(n) for n in names]
    groups = {lab: [i for i, x in enumerate(labels) if x == lab] for lab in colors}
    marked = [i for i, n in enumerate(names) if n in set(highlight)]

    def traces(coords: np.ndarray) -> list[go.Scatter]:
        out = []
        for lab, ids in groups.items():
            out.append(
                go.Scatter(
                    x=coords[ids, 0],
                    y=coords[ids, 1],
                    mode="markers+text",
                    text=[esc(names[i]) for i in ids],
                    textposition="top center",
                    customdata=[hov[i] for i in ids],
                    hovertemplate="%{customdata}<extra></extra>",
                    marker={"size": 13, "color": colors[lab], "line": {"width": 1, "color": "#333"}},
                    name=esc(lab),
                )
            )
        if marked:
            out.append(
                go.Scatter(
                    x=coords[marked, 0],
                    y=coords[marked, 1],
                    mode="markers",
                    marker={"size": 26, "symbol": "circle-open", "color": "#d62728", "line": {"width": 3}},
                    customdata=[hov[i] for i in marked],
                    hovertemplate="%{customdata}<extra></extra>",
                    name="added",
                )
            )
        return out

    allc = np.vstack([c for _, c in layouts]) if layouts else np.zeros((1, 2))
    pad = 0.15 * (np.ptp(allc, axis=0) + 1e-9)
    xr = [float(allc[:, 0].min() - pad[0]), float(allc[:, 0].max() + pad[0])]
    yr = [float(allc[:, 1].min() - pad[1]), float(allc[:, 1].max() + pad[1])]
    fig = go.Figure(data=traces(layouts[-1][1]) if layouts else [])
    if len(layouts) > 1:
        fig.frames = [go.Frame(data=traces(c), name=str(lab)) for lab, c in layouts]
        _animation_controls(fig, [lab for lab, _ in layouts])
    fig.update_layout(
        title=esc(title),
        xaxis={"range": xr, "title": "dim 1", "zeroline": False},
        yaxis={"range": yr, "title": "dim 2", "zeroline": False, "scaleanchor": "x"},
        legend={"title": {"text": esc(level)}},
        height=620,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def _animation_controls(fig: go.Figure, labels: list[object]) -> None:
    """A slider and a play button that step through the frames (one per model)."""
    steps = [
        {
            "args": [
                [str(lab)],
                {"frame": {"duration": 400, "redraw": True}, "mode": "immediate", "transition": {"duration": 300}},
            ],
            "label": esc(lab),
            "method": "animate",
        }
        for lab in labels
    ]
    fig.update_layout(
        sliders=[{"active": len(labels) - 1, "steps": steps, "currentvalue": {"prefix": "model: "}, "pad": {"t": 40}}],
        updatemenus=[
            {
                "type": "buttons",
                "showactive": False,
                "x": 0,
                "y": -0.12,
                "xanchor": "right",
                "buttons": [
                    {
                        "label": "▶",
                        "method": "animate",
                        "args": [
                            None,
                            {
                                "frame": {"duration": 700, "redraw": True},
                                "fromcurrent": True,
                                "transition": {"duration": 500},
                            },
                        ],
                    }
                ],
            }
        ],
    )
