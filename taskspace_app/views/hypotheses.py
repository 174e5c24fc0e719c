"""Hypotheses: fit of the task space to each hypothesis level, generalisation and stability."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from taskspace_app import downloads, pickers, reading, widgets
from taskspace_core import plots, spaces
from taskspace_core import space_uncertainty as unc

st.title("Hypotheses")
series, ref = pickers.pick_series_reference()
options = reading.available(ref, symmetric_only=True)
if not options or len(ref.tasks) < 3:
    widgets.empty_state("hypothesis tests need a symmetric task space over at least three tasks.")
    st.stop()
which = pickers.pick_matrix(options, default="profile" if "profile" in options else options[0])
estimate = pickers.pick_estimate(ref, which)
n_perm = int(widgets.bound("selectbox", "Permutations (Mantel)", ["999", "9999"], "perm", "9999", container=st.sidebar))
# default: levels that group tasks (some shared labels, more than one label); e.g. a per-task UID is not a hypothesis
useful = [lv for lv in ref.levels() if 1 < len(set(ref.labels(lv))) < len(ref.tasks)]
levels = widgets.bound_multi("Hypothesis levels", ref.levels(), "levels", useful or ref.levels())
stat = widgets.bound(
    "radio",
    "Statistic",
    ["spearman", "within_minus_between", "ari"],
    "stat",
    "spearman",
    horizontal=True,
    format_func=lambda k: {"spearman": "Spearman ρ", "ari": "ARI"}.get(k, "within − between"),
)

custom = None
upload = st.file_uploader(
    "Your own N x N hypothesis matrix (CSV, task names in the first row and column)", type=["csv"], key="hyp_upload"
)
if upload is not None:
    try:
        H, warns = spaces.HypothesisSpace.from_matrix(pd.read_csv(upload, index_col=0), ref.names, "uploaded")
        custom = (tuple(H.task_names), tuple(float(v) for v in H.matrix.ravel()))
        for w in warns:
            st.warning(widgets.md(w))
    except (spaces.SpaceError, ValueError, UnicodeDecodeError) as exc:
        st.error(f"The matrix was not used: {widgets.md(str(exc))}")

rows, sentences = [], []
with st.spinner("testing hypotheses…"):
    for r in series.records:
        sp = reading.load(r)
        if sp is None or which not in reading.available(sp, symmetric_only=True):
            continue
        for lev in levels + (["uploaded"] if custom else []):
            try:
                res = reading.fit_for(r, which, estimate, lev, n_perm, custom if lev == "uploaded" else None)
            except spaces.SpaceError as exc:
                st.warning(f"{widgets.md(lev)} on {widgets.md(reading.model_name(r))}: {exc}")
                continue
            rows.append(
                {
                    "model": pickers.short_label(r),
                    "size": r.get("size_label") or "",
                    "step": r.get("step"),
                    **res,
                    "eval pairs per task": sp.n_eval_pairs,
                }
            )
            if (sp.model.fingerprint, sp.model.revision) == (ref.model.fingerprint, ref.model.revision):
                sentences.append(unc.fit_sentence(rows[-1], stat))
if not rows:
    st.info("Choose at least one hypothesis level (or upload a matrix).")
    st.stop()
fits = pd.DataFrame(rows)
p_col = {"spearman": "mantel_p", "within_minus_between": "wmb_p", "ari": "ari_p"}[stat]  # ARI: its own p
st.caption(
    f"n = {len(ref.tasks)} tasks ({len(ref.tasks) * (len(ref.tasks) - 1) // 2} task pairs), "
    f"{ref.n_eval_pairs} eval pairs per task · one-sided permutation p-values, {n_perm} permutations"
)
fig = plots.fit_bars(fits, stat=stat, p_col=p_col, title=f"{stat} of {reading.MATRICES[which][0]} per model")
st.plotly_chart(fig, width="stretch", key="hyp_bars")
if sentences:
    st.markdown(f"**{widgets.md(ref.model.label)}**: " + widgets.md("; ".join(sentences) + "."))
    st.caption(
        "Whiskers: 95% bootstrap interval over eval pairs; the possible maximum is the space's split-half "
        "reliability (noise ceiling, Spearman-Brown corrected)."
    )
downloads.downloads(fig, fits, f"taskspace_hypotheses_{which}", "hyp")
st.dataframe(fits.round(4), hide_index=True, width="stretch")

st.subheader("Generalisation to overarching concepts")
st.caption(
    "Per task: mean transfer to the other tasks of its category divided by self-transfer; per model: the ratio "
    "of means over tasks, with a 95% bootstrap interval over tasks. Tasks whose self-transfer is not above the "
    "noise floor (mean |T| off the diagonal) are left out and counted. The paper finds larger models generalise more."
)
gen = []
for r in series.records:
    sp = reading.load(r)
    T = reading.transfer_source(sp, estimate)[0] if sp is not None else None
    if T is not None:
        g = spaces.generalisation(T, sp.labels("category"))
        gen.append(
            {
                "size": str(r.get("size_label") or reading.model_name(r)),
                "step": r.get("step") or 0,
                "generalisation": g.value,
                "generalisation_ci_lo": g.low,
                "generalisation_ci_hi": g.high,
                "interval": f"[{g.low:.3g}, {g.high:.3g}]",
                "n tasks": g.n_included,
                "left out (self-transfer)": g.n_excluded,
            }
        )
if gen:
    df_g = pd.DataFrame(gen)
    fig_g = plots.series_lines(
        df_g,
        x="step",
        y="generalisation",
        group="size",
        hover_cols=["interval", "n tasks", "left out (self-transfer)"],
        title="Generalisation per size",
        hline=0.0,
    )
    st.plotly_chart(fig_g, width="stretch", key="hyp_gen")
    downloads.downloads(fig_g, df_g, "taskspace_generalisation", "gen")
else:
    st.info("No transfer matrix in this series: run the 'transfer' method to see generalisation.")

stab = pd.DataFrame()
if len(series.records) > 1:
    st.subheader("The paper's three findings on this series")
    try:
        found = reading.findings(list(series.records), which, estimate)
    except spaces.SpaceError as exc:
        found = None
        st.warning(f"The series findings could not be tested: {widgets.md(str(exc))}")
    if found is not None:
        table = pd.DataFrame(found["table"])
        if not table.empty:
            stab = table[table["finding"].str.startswith("stability")]
        st.markdown("\n".join(f"- {widgets.md(line)}" for line in found["report"]))
        st.caption(
            "(1) generalisation by size at the last step all sizes share, (2) overlap lift within minus between "
            "categories over steps, (3) stability of the task space over steps. Intervals: 95% bootstrap over "
            "tasks, the same resampled tasks for every model, so changes are paired; change p: two-sided "
            "bootstrap; trend p: permutation of the models' order (3 models cannot reach p < 0.33)."
        )
st.subheader("Stability across checkpoints")
if not stab.empty:
    df_s = pd.DataFrame(
        {
            "size": stab["size"],
            "step": stab["x"].astype(int),
            "compared": stab["finding"].str.replace("stability ", "", regex=False),
            "spearman": stab["value"],
            "spearman_ci_lo": stab["low"],
            "spearman_ci_hi": stab["high"],
            "mantel p": stab["p"].round(4),
        }
    )
    fig_s = plots.series_lines(
        df_s,
        x="step",
        y="spearman",
        group="size",
        dash="compared",
        hover_cols=["mantel p"],
        title=f"Spearman between checkpoints' task spaces ({reading.MATRICES[which][0]})",
    )
    st.plotly_chart(fig_s, width="stretch", key="hyp_stab")
    st.caption(
        "'vs previous' at a step compares it with the checkpoint before; 'vs last' with the last checkpoint. "
        "Whiskers: 95% bootstrap over tasks; p: one-sided Mantel test (999 joint shuffles of one space's tasks)."
    )
    downloads.downloads(fig_s, df_s, "taskspace_stability", "stab")
else:
    st.info("Stability needs at least two checkpoints of one size in this series.")
