"""Figures of task spaces: data in, plotly Figure out (no I/O, no Streamlit).

Every function takes plain arrays / lists / DataFrames and returns a
:class:`plotly.graph_objects.Figure`. Text that came from users (task names,
descriptions, example sentences) is HTML-escaped before it goes into hover text,
because plotly renders a subset of HTML there.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

DIVERGING = "RdBu_r"  # red = positive transfer / similarity, blue = negative
SEQUENTIAL = "Viridis"
_PALETTE = qualitative.Plotly + qualitative.D3 + qualitative.Set3


def esc(text: object) -> str:
    """HTML-escape user text for plotly hover/labels."""
    return html.escape(str(text), quote=False)


def category_colors(labels: Sequence[str]) -> dict[str, str]:
    """Stable colour per label (in order of first appearance)."""
    out: dict[str, str] = {}
    for lab in labels:
        if lab not in out:
            out[lab] = _PALETTE[len(out) % len(_PALETTE)]
    return out


def _symmetric_range(M: np.ndarray, exclude_diagonal: bool) -> float:
    vals = M[~np.eye(M.shape[0], dtype=bool)] if exclude_diagonal and M.shape[0] > 1 else M.ravel()
    vals = vals[np.isfinite(vals)]
    return float(np.max(np.abs(vals))) if vals.size else 1.0


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
) -> go.Figure:
    """Heatmap of an N x N task matrix with category colour bands on both axes.

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
        hovertemplate="%{text}<br><b>" + esc(value_label) + " = %{z:.3f}</b><extra></extra>",
        colorscale=DIVERGING if diverging else SEQUENTIAL,
        zmid=0 if diverging else None,
        zmin=-zmax if diverging else (None if not clip_diagonal else float(np.nanmin(A))),
        zmax=zmax if diverging or clip_diagonal else None,
        colorbar={"title": {"text": esc(value_label)}, "len": 0.5, "y": 1.0, "yanchor": "top"},
    )
    fig.add_trace(heat, row=2, col=2)
    # colour bands: one-row/one-column heatmaps over category codes with a discrete scale
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
    return fig


def embedding_figure(
    layouts: Sequence[tuple[str, np.ndarray]],
    names: Sequence[str],
    labels: Sequence[str],
    *,
    level: str = "category",
    hover: Sequence[str] | None = None,
    title: str = "",
) -> go.Figure:
    """2-D layout(s) of the tasks coloured by a hypothesis level.

    With several layouts (checkpoints or sizes, already Procrustes-aligned), a slider
    and play button step through them; points keep their identity, so they move smoothly.
    """
    colors = category_colors(list(labels))
    hov = list(hover) if hover is not None else [esc(n) for n in names]
    groups = {lab: [i for i, x in enumerate(labels) if x == lab] for lab in colors}

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
        return out

    allc = np.vstack([c for _, c in layouts]) if layouts else np.zeros((1, 2))
    pad = 0.15 * (np.ptp(allc, axis=0) + 1e-9)
    xr = [float(allc[:, 0].min() - pad[0]), float(allc[:, 0].max() + pad[0])]
    yr = [float(allc[:, 1].min() - pad[1]), float(allc[:, 1].max() + pad[1])]
    fig = go.Figure(data=traces(layouts[-1][1]) if layouts else [])
    if len(layouts) > 1:
        fig.frames = [go.Frame(data=traces(c), name=str(lab)) for lab, c in layouts]
        steps = [
            {
                "args": [
                    [str(lab)],
                    {"frame": {"duration": 400, "redraw": True}, "mode": "immediate", "transition": {"duration": 300}},
                ],
                "label": esc(lab),
                "method": "animate",
            }
            for lab, _ in layouts
        ]
        fig.update_layout(
            sliders=[
                {"active": len(layouts) - 1, "steps": steps, "currentvalue": {"prefix": "model: "}, "pad": {"t": 40}}
            ],
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
    fig.update_layout(
        title=esc(title),
        xaxis={"range": xr, "title": "dim 1", "zeroline": False},
        yaxis={"range": yr, "title": "dim 2", "zeroline": False, "scaleanchor": "x"},
        legend={"title": {"text": esc(level)}},
        height=620,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def dendrogram_figure(
    linkage_matrix: np.ndarray, names: Sequence[str], categories: Sequence[str], *, title: str = ""
) -> go.Figure:
    """Horizontal dendrogram (leaves on the y axis) with leaves coloured by category."""
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
    # leaves at x = 0 next to their labels; labels take their category colour
    ticktext = [f'<span style="color:{colors[categories[i]]}">{esc(names[i])}</span>' for i in order]
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


def series_lines(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    group: str,
    dash: str | None = None,
    title: str = "",
    y_label: str | None = None,
    hover_cols: Sequence[str] = (),
    hline: float | None = None,
) -> go.Figure:
    """Lines of ``y`` against ``x``, one per value of ``group`` (and line style per ``dash``)."""
    fig = go.Figure()
    colors = category_colors([str(g) for g in df[group].unique()]) if len(df) else {}
    dashes = ["solid", "dash", "dot", "dashdot"]
    dash_vals = list(dict.fromkeys(df[dash])) if dash and len(df) else [None]
    for g, col in colors.items():
        for k, dv in enumerate(dash_vals):
            sub = df[(df[group].astype(str) == g) & ((df[dash] == dv) if dash else True)].sort_values(x)
            if sub.empty:
                continue
            extra = "".join(f"<br>{esc(c)}: %{{customdata[{i}]}}" for i, c in enumerate(hover_cols))
            fig.add_trace(
                go.Scatter(
                    x=sub[x],
                    y=sub[y],
                    mode="lines+markers",
                    name=esc(f"{g} · {dv}" if dash else g),
                    line={"color": col, "dash": dashes[k % len(dashes)]},
                    customdata=sub[list(hover_cols)].to_numpy() if hover_cols else None,
                    hovertemplate=f"{esc(group)} {esc(g)}<br>{esc(x)} %{{x}}<br>{esc(y_label or y)} %{{y:.3f}}"
                    + extra
                    + "<extra></extra>",
                )
            )
    if hline is not None:
        fig.add_hline(y=hline, line={"color": "#999", "dash": "dot"})
    fig.update_layout(
        title=esc(title),
        xaxis_title=esc(x),
        yaxis_title=esc(y_label or y),
        height=420,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def fit_bars(df: pd.DataFrame, *, stat: str = "spearman", p_col: str = "mantel_p", title: str = "") -> go.Figure:
    """Bars of a fit statistic per model and hypothesis level, p-value and n on hover and as text."""
    fig = go.Figure()
    colors = category_colors([str(v) for v in df["level"].unique()]) if len(df) else {}
    for lev, col in colors.items():
        sub = df[df["level"].astype(str) == lev]
        p = sub[p_col] if p_col in sub else pd.Series([np.nan] * len(sub))
        fig.add_trace(
            go.Bar(
                x=[esc(m) for m in sub["model"]],
                y=sub[stat],
                name=esc(lev),
                marker_color=col,
                text=[f"p={v:.3g}" if np.isfinite(v) else "" for v in p],
                textposition="outside",
                customdata=np.stack([p.to_numpy(), sub["n_tasks"].to_numpy()], axis=1),
                hovertemplate="%{x}<br>" + esc(stat) + " %{y:.3f}<br>p %{customdata[0]:.4g}"
                "<br>n tasks %{customdata[1]}<extra>" + esc(lev) + "</extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        title=esc(title),
        yaxis_title=esc(stat),
        height=440,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def learning_curves(df: pd.DataFrame, *, title: str = "") -> go.Figure:
    """One panel per metric (held-out loss, then accuracy per category) against tokens seen, a line per size.

    ``df`` is long: columns ``size``, ``tokens``, ``step``, ``metric``, ``value`` (as
    :func:`taskspace_core.pretrain_eval.curve_frame` builds from suite.json). Accuracy panels
    get a dotted chance line at 0.5; tokens are on a log axis (step 0 is drawn at 1 token).
    """
    metrics = list(dict.fromkeys(df["metric"])) or ["held-out loss"]
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[esc(m) for m in metrics])
    colors = category_colors(list(dict.fromkeys(df["size"])))
    for col, metric in enumerate(metrics, start=1):
        part = df[df["metric"] == metric]
        for size, g in part.groupby("size", sort=False):
            g = g.sort_values("tokens")
            fig.add_trace(
                go.Scatter(
                    x=np.maximum(g["tokens"].to_numpy(), 1),
                    y=g["value"],
                    mode="lines+markers",
                    name=esc(size),
                    legendgroup=str(size),
                    showlegend=col == 1,
                    line={"color": colors[size]},
                    customdata=g["step"],
                    hovertemplate=f"{esc(size)} step %{{customdata}}<br>%{{x:,}} tokens"
                    f"<br>{esc(metric)} %{{y:.3f}}<extra></extra>",
                ),  # fmt: skip
                row=1,
                col=col,
            )
        if metric != "held-out loss":
            fig.add_hline(y=0.5, line_dash="dot", line_color="grey", row=1, col=col)
        fig.update_xaxes(type="log", title_text="tokens seen", row=1, col=col)
    fig.update_layout(title=esc(title), height=380, margin={"t": 70, "b": 40})
    return fig
