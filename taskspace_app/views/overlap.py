"""Parameter overlap: Jaccard and lift heatmaps, where masks live, and distributedness across models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from taskspace_app import downloads, learning_curves, pickers, reading, widgets
from taskspace_core import plots, spaces

st.title("Parameter overlap")
with st.expander("Learning curves of the pretrained model suites (held-out loss, BLiMP accuracy by tokens)"):
    learning_curves.show()
series, rec, sp = pickers.pick_space()
mats = [k for k in ("J", "lift", "lift_uniform") if k in reading.available(sp)]
if not mats:
    widgets.empty_state("this run has no FTGD masks (run the 'transfer' or 'gradient' method with masks).")
    st.stop()
which = widgets.bound(
    "selectbox",
    "Overlap measure",
    mats,
    "matrix",
    "lift" if "lift" in mats else mats[0],
    container=st.sidebar,
    format_func=lambda k: reading.MATRICES[k][0],
)
# lazy tabs: only the open tab's figures are built on each run (four figures made the view miss 1.5 s)
tab_map, tab_where, tab_series = st.tabs(
    ["Overlap heatmap", "Where masks live", "Across sizes and checkpoints"], key="overlap_tab", on_change="rerun"
)
M, _ = reading.matrix(rec, which)
order = spaces.cluster_order(M) if len(sp.tasks) > 2 else None  # the heatmap's and the small multiples' order

with tab_map:
    if tab_map.open:
        st.caption(widgets.md(f"{len(sp.tasks)} tasks · {reading.model_name(rec)} · diagonal = a mask with itself"))
        fig = plots.task_heatmap(
            M,
            sp.names,
            sp.labels("category"),
            title=reading.MATRICES[which][0],
            value_label=which,
            diverging=False,
            order=order,
            clip_diagonal=True,
            examples=[(t.example_good, t.example_bad) for t in sp.tasks],
        )
        st.plotly_chart(fig, width="stretch", key="overlap_heatmap")
        downloads.downloads(
            fig, downloads.matrix_frame(M, sp.names), f"taskspace_{which}_{reading.model_name(rec)}", "ovl", index=True
        )

with tab_where:
    if tab_where.open:
        if not sp.mask_distribution:
            st.info("This run kept no per-layer mask distribution.")
        else:
            names = [n for n in sp.names if n in sp.mask_distribution]
            pick = widgets.bound("selectbox", "Task", ["(all tasks, summed)", *names], "task", names[0], container=st)
            dists = [sp.mask_distribution[n] for n in (names if pick.startswith("(all") else [pick])]
            base = dists[0]
            counts = np.sum([np.asarray(d.get("counts", []), dtype=float) for d in dists], axis=0)
            dist = {"layers": base.get("layers", []), "modules": base.get("modules", []), "counts": counts}
            fig_w = plots.mask_location_figure(dist, title=f"mask entries of {pick} by layer and module type")
            st.plotly_chart(fig_w, width="stretch", key="overlap_where")
            df_w = pd.DataFrame(
                counts,
                index=[f"layer {x}" if str(x).isdigit() else str(x) for x in dist["layers"]],
                columns=list(dist["modules"]),
            )
            downloads.downloads(fig_w, df_w, "taskspace_mask_location", "where", index=True)

with tab_series:
    if tab_series.open:
        recs = list(series.records)
        if len(recs) < 2:
            st.info("Only one model in this series: run a model suite (sizes x checkpoints) to compare them.")
        else:
            panels, rows = [], []
            for r in recs:
                s = reading.load(r)
                if s is None or s.names != sp.names or which not in reading.available(s):
                    continue
                L, _ = reading.matrix(r, which)
                idx = list(order) if order is not None else list(range(len(L)))
                panels.append((pickers.short_label(r), L[np.ix_(idx, idx)]))  # same task order as the heatmap
                dist = spaces.distributedness(L, s.labels("category"))
                for kind, val in (("within", dist.within), ("between", dist.between)):
                    rows.append(
                        {
                            "size": str(r.get("size_label") or reading.model_name(r)),
                            "step": r.get("step"),
                            "pairs": kind,
                            which: val,
                            "n pairs": dist.n_within if kind == "within" else dist.n_between,
                        }
                    )
            n_cols = max(1, len(series.steps)) if len(series.steps) > 1 else min(4, len(panels))
            fig_s = plots.small_multiples(
                panels,
                [sp.names[i] for i in (order if order is not None else range(len(sp.names)))],
                n_cols=n_cols,
                value_label=which,
                title=f"{reading.MATRICES[which][0]} per model (rows: sizes, columns: steps)",
            )
            st.plotly_chart(fig_s, width="stretch", key="overlap_multiples")
            task_order = [sp.names[i] for i in (order if order is not None else range(len(sp.names)))]
            long = [
                {"model": lab, "task_row": a, "task_col": b, which: float(P[i, j])}
                for lab, P in panels
                for i, a in enumerate(task_order)
                for j, b in enumerate(task_order)
            ]
            downloads.downloads(fig_s, pd.DataFrame(long), "taskspace_overlap_series", "multi")
            df_d = pd.DataFrame(rows)
            if df_d["step"].notna().any():
                fig_d = plots.series_lines(
                    df_d,
                    x="step",
                    y=which,
                    group="size",
                    dash="pairs",
                    hover_cols=["n pairs"],
                    title="Distributedness: lift within vs between categories",
                    y_label=which,
                )
                st.plotly_chart(fig_d, width="stretch", key="overlap_distributedness")
                st.caption(
                    "Solid: same-category task pairs; dashed: different categories. The paper finds the gap "
                    "grows with pre-training."
                )
                try:
                    lines = [ln for ln in reading.findings(recs)["report"] if ln.startswith("(2)")]
                except spaces.SpaceError:
                    lines = []
                if lines:
                    st.markdown(
                        "**Does the gap grow?** Per-tensor lift within minus between categories, first vs last "
                        "step (95% bootstrap over tasks, two-sided p), and its Spearman with step:\n"
                        + "\n".join(f"- {widgets.md(ln[4:])}" for ln in lines)
                    )
                downloads.downloads(fig_d, df_d, "taskspace_distributedness", "distr")
