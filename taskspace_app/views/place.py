"""Place your tasks: add saved pair sets to a cached analysis and see where each added task lands.

The job runs the analysis's own config on the union task set; only the added tasks' units
are computed (the plan says how many). Then, per added task and per symmetric task space:
nearest neighbours with bootstrap intervals, the best-fitting category (METHODS s6d), and
the task highlighted in the map and the tree.
"""

from __future__ import annotations

import warnings

import pandas as pd
import streamlit as st

from precompute import jobs
from taskspace_app import auth, downloads, jobs_panel, pickers, placing, reading, widgets
from taskspace_app.auth import current_user
from taskspace_app.validation import server_mode
from taskspace_core import limits, plots, spaces, tasksets

N_BOOT = 1000
N_PERM = 999

st.title("Place your tasks")
st.caption(
    "Add your own pair sets (saved on *Your pairs*) to a cached analysis: only the new tasks' units run, "
    "then each added task is placed in every task space of the analysis."
)
series, rec, sp = pickers.pick_space()
found = placing.extensions(rec, sp, reading.entries(reading.cache_path()), reading.load)


def add_tasks() -> None:
    saved = tasksets.list_sets(reading.cache_path(), owner=auth.set_owner())
    if not saved:
        st.info("No saved pair set yet: upload pairs on **Your pairs** and save them, then come back here.")
        return
    chosen = widgets.bound_multi("Saved pair sets to add", saved, "add", [])
    if not chosen:
        return
    try:
        config = placing.extended_config(sp, chosen)
    except placing.PlacementError as exc:
        st.warning(widgets.md(str(exc)))
        return
    refused = limits.check_request(config, server_mode())
    if refused:
        st.error("Not runnable on this server: " + widgets.md("; ".join(refused)))
        return
    c1, c2 = st.columns(2)
    _, plan = jobs_panel.plan_panel(config, c1, key="place_plan_button", state="place_plan")
    if auth.require_login("start work") and c2.button(
        "Add and run", type="primary", key="place_start", icon=":material/play_arrow:"
    ):
        try:
            eta = plan.get("estimated_seconds") if plan else None
            status, joined = jobs.start_job(config, user=current_user(), eta_s=eta)
            st.session_state["place_job"] = status.id
            st.toast("joined the job already running for this plan" if joined else "job started")
        except (OSError, jobs.JobError) as exc:
            st.error(f"Could not start: {widgets.md(str(exc))}")
    if st.session_state.get("place_job"):
        jobs_panel.jobs_panel("place", only=[st.session_state["place_job"]], limit=1)


with st.expander("Add tasks to this analysis", expanded=not found, icon=":material/add_circle:"):
    st.caption(widgets.md(f"{reading.model_name(rec)} on {sp.taskset}: {len(sp.names)} tasks, same config and model."))
    add_tasks()

st.subheader("Placement")
if not found:
    st.info("No extended analysis of this model yet: add tasks above; the placement shows here when the job is done.")
    st.stop()
by_key = {r["key"]: r for r in found}
ext_key = st.selectbox(
    "Extended analysis",
    list(by_key),
    key="place_ext",
    format_func=lambda k: f"{by_key[k].get('tasks')} ({by_key[k].get('n_tasks')} tasks)",
)
ext_rec = by_key[ext_key]
ext = reading.load(ext_rec)
if ext is None:
    st.error("The extended analysis could not be read from the cache.")
    st.stop()
added = spaces.added_tasks(sp.names, ext.names)
options = reading.available(ext, symmetric_only=True)
if not options:
    widgets.empty_state("the extended analysis holds no symmetric task space.")
    st.stop()
level = widgets.bound("selectbox", "Categories from", ext.levels(), "level", "category", container=st.sidebar)
labels = dict(zip(ext.names, ext.labels(level), strict=True))


@st.cache_data(max_entries=64, show_spinner=False)
def _placements(
    key: str, created: float, which: str, level: str, added: tuple[str, ...]
) -> tuple[list[spaces.Placement], str, list[str]]:
    S, notes = reading.matrix(ext_rec, which)
    reps, how = placing.replicates_for(ext, which, S, n_boot=N_BOOT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spaces.SpaceWarning)
        got = spaces.place_tasks(S, ext.names, list(added), ext.labels(level), which, reps, level, N_PERM)
    return got, how, notes


results: dict[str, dict[str, spaces.Placement]] = {t: {} for t in added}
interval_notes: dict[str, str] = {}
try:
    with st.spinner("placing the added tasks…"):
        for which in options:
            got, how, _ = _placements(ext_key, float(ext_rec.get("created", 0)), which, level, tuple(added))
            interval_notes[which] = how
            for p in got:
                results[p.task][which] = p
except spaces.SpaceError as exc:
    st.error(f"No placement: {widgets.md(str(exc))}")
    st.stop()


def label(which: str) -> str:
    return reading.MATRICES[which][0]


for task in added:
    info = next(t for t in ext.tasks if t.name == task)
    st.markdown(f"#### {widgets.md(task)} · {widgets.md(info.category)} · {info.n_pairs} pairs")
    st.caption(widgets.md(f"✓ {info.example_good}  ✗ {info.example_bad}"))
    st.markdown("**Best-fitting category** (highest mean similarity to the category's tasks of the analysis)")
    st.dataframe(placing.categories_frame(results[task], label), hide_index=True, width="stretch")
    st.markdown("**Nearest neighbours**")
    tabs = st.tabs([label(w) for w in options])
    for tab, which in zip(tabs, options, strict=True):
        with tab:
            st.caption(widgets.md(interval_notes[which]))
            st.dataframe(
                placing.neighbours_frame(results[task][which], labels, level), hide_index=True, width="stretch"
            )

st.subheader("In the map and the tree")
which = pickers.pick_matrix(options, default="profile" if "profile" in options else options[0])
S, notes = reading.matrix(ext_rec, which)
for note in notes:
    st.warning(widgets.md(note))
try:
    coords, note = reading.layout(ext_rec, which, "exact", "mds")
    tree = spaces.linkage_tree(S, ext.names) if len(ext.names) >= 3 else None
except spaces.SpaceError as exc:
    st.error(f"No layout: {widgets.md(str(exc))}")
    st.stop()
hover = [f"<b>{plots.esc(t.name)}</b> ({plots.esc(t.level(level))})<br>{plots.esc(t.description)}" for t in ext.tasks]
left, right = st.columns(2)
with left:
    fig = plots.embedding_figure(
        [(reading.model_name(ext_rec), coords)],
        ext.names,
        ext.labels(level),
        level=level,
        hover=hover,
        title=f"MDS of {label(which)} (added tasks ringed)",
        highlight=added,
    )
    st.plotly_chart(fig, width="stretch", key="place_map")
with right:
    if tree is not None:
        tfig = plots.dendrogram_figure(
            tree.linkage, ext.names, ext.labels("category"), title=f"Tree of {label(which)}", highlight=added
        )
        st.plotly_chart(tfig, width="stretch", key="place_tree")
rows = [
    {"added task": t, "task space": label(w), **row}
    for t in added
    for w, p in results[t].items()
    for row in placing.neighbours_frame(p, labels, level).to_dict("records")
]
downloads.downloads(fig, pd.DataFrame(rows), f"taskspace_placement_{reading.model_name(ext_rec)}", "place")
