"""Surprisal curves of one minimal pair, aligned at the divergence: data in, plotly Figure out.

Same contract as the rest of :mod:`taskspace_core.plots` (no I/O, no Streamlit, user text escaped).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from taskspace_core.plots.style import esc

GOOD, BAD = "#1f77b4", "#d62728"
_SIDES = (("good", GOOD), ("bad", BAD))


def _ticks(rows: pd.DataFrame) -> tuple[list[int], list[str]]:
    """One label per position: the token, or 'good / bad' where the two tokens differ (∅: none)."""
    text = []
    for g, b in zip(rows["token_good"], rows["token_bad"], strict=True):
        g, b = esc(g).strip() or "∅", esc(b).strip() or "∅"
        text.append(g if g == b else f"{g} / {b}")
    return [int(p) for p in rows["position"]], text


def surprisal_figure(rows: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Surprisal (-log p, nats) per token of a pair's good and bad sentence; position 0 is the first
    differing token (shaded from there on; markers enlarged where the two tokens differ). ``rows``: one pair of
    :func:`taskspace_core.pair_tokens.token_frame`; its ``_after`` columns, when present, add dashed
    curves after tuning."""
    rows = rows.sort_values("position")
    fig = go.Figure()
    x = rows["position"].to_numpy()
    differ = rows["differs"].to_numpy(dtype=bool) & (rows["token_good"] != rows["token_bad"]).to_numpy()
    size = np.where(differ, 12, 6)
    after = "logp_good_after" in rows.columns and rows["logp_good_after"].notna().any()
    stages = [("", "solid", "before tuning")] + ([("_after", "dash", "after tuning")] if after else [])
    for suffix, dash, stage in stages:
        for side, color in _SIDES:
            y = -rows[f"logp_{side}{suffix}"].to_numpy(dtype=float)
            tokens = [esc(t) for t in rows[f"token_{side}"]]
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines+markers",
                    name=f"{side} ({stage})" if after else side,
                    line={"color": color, "dash": dash},
                    marker={"size": size, "color": color},
                    customdata=tokens,
                    hovertemplate=f"{side}, {stage}<br>%{{customdata}}<br>position %{{x}}<br>"
                    "surprisal %{y:.3f} nats<extra></extra>",
                )
            )
    if len(x) and (x >= 0).any():
        fig.add_vrect(x0=-0.5, x1=float(x.max()) + 0.5, fillcolor="#ffd54f", opacity=0.18, line_width=0)
        fig.add_vline(x=-0.5, line_dash="dot", line_color="#777")
    tickvals, ticktext = _ticks(rows)
    fig.update_layout(
        title=esc(title),
        height=420,
        xaxis={
            "title": "token (shaded: from the first token where good and bad differ)",
            "zeroline": False,
            "tickvals": tickvals,
            "ticktext": ticktext,
        },
        yaxis={"title": "surprisal −log p (nats)"},
        legend={"orientation": "h", "y": -0.3},
        margin={"t": 50, "b": 40},
    )
    return fig
