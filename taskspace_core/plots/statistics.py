"""Figures of statistics across models: lines over sizes/checkpoints, bars of hypothesis fits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from taskspace_core.plots.style import category_colors, esc


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
    """Lines of ``y`` against ``x``, one per value of ``group`` (and line style per ``dash``); whiskers
    where ``df`` has ``{y}_ci_lo`` / ``{y}_ci_hi``."""
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
                    error_y=_whiskers(sub, y),
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
                error_y=_whiskers(sub, stat),
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


def _whiskers(df: pd.DataFrame, col: str) -> dict | None:
    """Asymmetric error bars from ``{col}_ci_lo`` / ``{col}_ci_hi`` (``within_minus_between``: ``wmb_``)."""
    stem = {"within_minus_between": "wmb"}.get(col, col)
    lo, hi = f"{stem}_ci_lo", f"{stem}_ci_hi"
    if lo not in df or hi not in df or not np.isfinite(df[[lo, hi]].to_numpy(dtype=float)).any():
        return None
    y = df[col].to_numpy(dtype=float)
    up = np.nan_to_num(df[hi].to_numpy(dtype=float) - y, nan=0.0).clip(min=0)
    down = np.nan_to_num(y - df[lo].to_numpy(dtype=float), nan=0.0).clip(min=0)
    return {"type": "data", "symmetric": False, "array": up.tolist(), "arrayminus": down.tolist(), "color": "#444"}


def base_bars(
    names: Sequence[str],
    values: np.ndarray,
    *,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    metric: str = "accuracy",
    title: str = "",
) -> go.Figure:
    """Bars of each task's base-model metric, with 95% interval whiskers when given."""
    v = np.asarray(values, dtype=float)
    df = pd.DataFrame({"value": v})
    if low is not None and high is not None:
        df["value_ci_lo"], df["value_ci_hi"] = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    custom = df.reindex(columns=["value_ci_lo", "value_ci_hi"]).to_numpy(dtype=float)
    fig = go.Figure(
        go.Bar(
            x=[esc(n) for n in names],
            y=v,
            marker_color="#4c78a8",
            error_y=_whiskers(df, "value"),
            customdata=custom,
            hovertemplate="%{x}<br>" + esc(metric) + " %{y:.3f}<br>95% interval [%{customdata[0]:.3f}, "
            "%{customdata[1]:.3f}]<extra></extra>",
        )
    )
    if metric == "accuracy":
        fig.add_hline(y=0.5, line={"color": "#999", "dash": "dot"})  # chance
    fig.update_layout(
        title=esc(title), yaxis_title=esc(metric), height=380, margin={"l": 10, "r": 10, "t": 50, "b": 10}
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
