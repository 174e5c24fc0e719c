"""Task space: heatmap of T, sym-T, profile similarity, G or J, ordered by clustering."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from taskspace_app import downloads, pickers, reading, widgets
from taskspace_core import plots, spaces
from taskspace_core import space_uncertainty as unc

st.title("Task space")
series, rec, sp = pickers.pick_space()
options = reading.available(sp)
if not options:
    widgets.empty_state("this run holds no task-by-task matrix.")
    st.stop()
which = pickers.pick_matrix(options, default="T" if "T" in options else options[0])
estimate = pickers.pick_estimate(sp, which)
order_by = widgets.bound(
    "radio",
    "Order",
    ["cluster", "file"],
    "order",
    "cluster",
    container=st.sidebar,
    format_func=lambda k: {"cluster": "by clustering", "file": "as in the task set"}[k],
)
clip = widgets.bound_toggle("Colour range without the diagonal", "clip", which == "T", container=st.sidebar)

M, notes = reading.matrix(rec, which, estimate)
label, diverging, symmetric = reading.MATRICES[which]
for note in notes:
    st.warning(widgets.md(note))

order = None
if order_by == "cluster" and len(sp.tasks) > 2:
    try:
        S = M if symmetric else reading.matrix(rec, "profile", estimate)[0]
        order = spaces.cluster_order(S)
    except spaces.SpaceError as exc:
        st.caption(f"Not clustered: {widgets.md(str(exc))}")

_, est_label = reading.transfer_source(sp, estimate)
title = f"{label} — {reading.model_name(rec)}"
sub = f"{len(sp.tasks)} tasks · {sp.n_eval_pairs} eval pairs per task · metric {sp.metric}"
if reading.uses_estimate(which):
    sub += f" · transfer: {est_label}"
st.caption(widgets.md(sub))
exact = est_label == "exact"
rel_view = which if which in unc.TRANSFER_VIEWS else "profile" if which == "T" else ""
badge = unc.reliability_badge(sp, rel_view) if exact and rel_view else ""
if badge:
    st.badge(badge + (" · of profile similarity" if which == "T" else ""), icon=":material/verified:", color="blue")
intervals = unc.t_interval(sp) if which == "T" and exact else None

fig = plots.task_heatmap(
    M,
    sp.names,
    sp.labels("category"),
    title=title,
    value_label=which,
    diverging=diverging,
    order=order,
    examples=[(t.example_good, t.example_bad) for t in sp.tasks],
    clip_diagonal=clip,
    intervals=intervals,
    interval_note=unc.NO_PER_PAIR_T if which == "T" and not exact else "",
)
st.plotly_chart(fig, width="stretch", key="space_heatmap")
df = downloads.matrix_frame(M, sp.names)
downloads.downloads(fig, df, f"taskspace_{which}_{reading.model_name(rec)}", "space", index=True)
if intervals is not None:
    cells = unc.t_interval_frame(sp, M)
    downloads.table_download(
        cells, "T with 95% intervals (CSV)", f"taskspace_T_intervals_{reading.model_name(rec)}", "space_iv"
    )

base_iv = unc.base_interval(sp, sp.metric)
if base_iv is not None:
    fig_b = plots.base_bars(
        sp.names, sp.eval1[sp.metric], low=base_iv[0], high=base_iv[1], metric=sp.metric,
        title=f"Base-model {sp.metric} per task (95% bootstrap interval over eval pairs)",
    )  # fmt: skip
    st.plotly_chart(fig_b, width="stretch", key="space_base")

with st.expander("Tasks in this space"):
    rows = pd.DataFrame(
        {
            "task": sp.names,
            "category": sp.labels("category"),
            "field": sp.labels("field"),
            "pairs": [t.n_pairs for t in sp.tasks],
            "good (example)": [t.example_good for t in sp.tasks],
            "bad (example)": [t.example_bad for t in sp.tasks],
            f"base {sp.metric}": np.round(sp.eval1.get(sp.metric, np.full(len(sp.tasks), np.nan)), 3),
            "self-transfer": np.round(np.diag(M), 3) if which == "T" else np.nan,
        }
    )
    st.dataframe(rows, hide_index=True, width="stretch")
