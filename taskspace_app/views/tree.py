"""Tree: average-linkage dendrogram of the phenomena, leaves coloured by category, with the ARI."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from taskspace_app import downloads, pickers, reading, widgets
from taskspace_core import plots, spaces

st.title("Tree")
series, rec, sp = pickers.pick_space()
options = reading.available(sp, symmetric_only=True)
if not options or len(sp.tasks) < 3:
    widgets.empty_state("a tree needs a symmetric task space over at least three tasks.")
    st.stop()
which = pickers.pick_matrix(options, default="profile" if "profile" in options else options[0])
estimate = pickers.pick_estimate(sp, which)
level = widgets.bound("selectbox", "Agreement with", sp.levels(), "level", "category", container=st.sidebar)

S, notes = reading.matrix(rec, which, estimate)
for note in notes:
    st.warning(widgets.md(note))
try:
    tree = spaces.linkage_tree(S, sp.names)
    stats = reading.fit_for(rec, which, estimate, level, 999)
except spaces.SpaceError as exc:
    st.error(f"No tree: {widgets.md(str(exc))}")
    st.stop()

left, right = st.columns([3, 1])
with left:
    fig = plots.dendrogram_figure(
        tree.linkage, sp.names, sp.labels("category"), title=f"{reading.MATRICES[which][0]} — {reading.model_name(rec)}"
    )
    st.plotly_chart(fig, width="stretch", key="tree_chart")
with right:
    n_labels = len(set(sp.labels(level)))
    ari = stats["ari"]
    st.metric(f"ARI vs {widgets.md(level)}", "n/a" if math.isnan(ari) else f"{ari:.3f}")
    st.caption(widgets.md(stats.get("ari_note") or f"ARI permutation p = {stats.get('ari_p', float('nan')):.3g}"))
    for stat, name in (("ari", "ARI"), ("spearman", "Spearman ρ")):
        lo, hi = stats.get(f"{stat}_ci_lo", math.nan), stats.get(f"{stat}_ci_hi", math.nan)
        if math.isfinite(lo) and math.isfinite(hi):
            st.caption(f"{name}: 95% bootstrap interval over eval pairs [{lo:.3f}, {hi:.3f}]")
    st.caption(
        f"Average-linkage clusters of 1 - S cut at {n_labels} clusters (the number of {widgets.md(level)} labels), "
        "compared with the labels by the adjusted Rand index: 1 = identical grouping, 0 = chance."
    )
    st.metric("Spearman ρ vs hypothesis", "n/a" if math.isnan(stats["spearman"]) else f"{stats['spearman']:.3f}")
    st.caption(f"Mantel p = {stats['mantel_p']:.3g} ({stats['n_permutations']} permutations)")
    st.caption(f"n = {stats['n_tasks']} tasks, {stats['n_pairs_upper']} task pairs")

clusters = spaces.cluster_labels(S, n_labels)
df = pd.DataFrame(
    {
        "leaf_order": [tree.leaf_order.index(i) for i in range(len(sp.names))],
        "task": sp.names,
        "category": sp.labels("category"),
        level: sp.labels(level),
        "cluster": clusters,
    }
).sort_values("leaf_order")
downloads.downloads(fig, df, f"taskspace_tree_{which}_{reading.model_name(rec)}", "tree")
st.dataframe(df, hide_index=True, width="stretch")
