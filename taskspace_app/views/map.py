"""Map: 2-D MDS / UMAP layouts of the task space; a slider steps through checkpoints or sizes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from taskspace_app import downloads, pickers, reading, widgets
from taskspace_core import plots, spaces

st.title("Map")
series, first = pickers.pick_series_reference()
options = reading.available(first, symmetric_only=True)
if not options:
    widgets.empty_state("this series holds no symmetric task space.")
    st.stop()
which = pickers.pick_matrix(options, default="profile" if "profile" in options else options[0])
estimate = pickers.pick_estimate(first, which)
method = widgets.bound(
    "radio", "Layout", ["mds", "umap"], "method", "mds", container=st.sidebar, horizontal=True, format_func=str.upper
)
level = widgets.bound("selectbox", "Colour by", first.levels(), "level", "category", container=st.sidebar)

# which models the slider walks through: checkpoints of one size, or sizes at one step
sizes, steps = series.sizes, series.steps
along_opts = ["checkpoints"] * (len(steps) > 1) + ["sizes"] * (len(sizes) > 1) + ["single"]
along = widgets.bound(
    "radio",
    "Slider over",
    along_opts,
    "along",
    along_opts[0],
    container=st.sidebar,
    format_func=lambda k: {
        "checkpoints": "checkpoints of one size",
        "sizes": "sizes at one step",
        "single": "one model",
    }[k],
)
if along == "checkpoints":
    size = widgets.bound("selectbox", "Size", sizes, "size", sizes[-1], container=st.sidebar)
    chosen = [r for r in series.records if str(r.get("size_label") or "") == size]
    frame_label = [f"step {r.get('step')}" for r in chosen]
elif along == "sizes":
    step = widgets.bound("selectbox", "Step", [str(s) for s in steps], "step", str(steps[-1]), container=st.sidebar)
    chosen = [r for r in series.records if str(r.get("step")) == step]
    frame_label = [str(r.get("size_label") or reading.model_name(r)) for r in chosen]
else:
    chosen = [pickers.pick_model(series)]
    frame_label = [reading.model_name(chosen[0])]

ref = reading.load(chosen[-1])
if ref is None:
    st.error("This result could not be read from the cache.")
    st.stop()
names = ref.names
try:  # reading.layout names what it computes, the first time, in its own spinner
    layouts, notes = [], set()
    for r in chosen:
        sp = reading.load(r)
        if sp is None or sp.names != names:
            st.warning(f"{widgets.md(reading.model_name(r))} has other tasks than the rest of the series; left out.")
            continue
        coords, note = reading.layout(r, which, estimate, method)
        layouts.append(coords)
        if note:
            notes.add(note)
    aligned = spaces.procrustes_align(layouts) if len(layouts) > 1 else layouts
except spaces.SpaceError as exc:
    st.error(f"No layout: {widgets.md(str(exc))}")
    st.stop()
for note in notes:
    st.info(widgets.md(note))

hover = [
    f"<b>{plots.esc(t.name)}</b> ({plots.esc(t.level(level))})<br>{plots.esc(t.description)}"
    f"<br>✓ {plots.esc(t.example_good)}<br>✗ {plots.esc(t.example_bad)}"
    for t in ref.tasks
]
frames = list(zip(frame_label[: len(aligned)], aligned, strict=False))
title = f"{method.upper()} of {reading.MATRICES[which][0]}"
st.caption(
    widgets.md(f"{len(names)} tasks · {len(frames)} model(s) · Procrustes-aligned to the last · D = 1 - S_scaled")
)
fig = plots.embedding_figure(frames, names, ref.labels(level), level=level, hover=hover, title=title)
st.plotly_chart(fig, width="stretch", key="map_chart")
df = pd.concat(
    [
        pd.DataFrame(
            {
                "model": lab,
                "task": names,
                level: ref.labels(level),
                "x": np.round(c[:, 0], 5),
                "y": np.round(c[:, 1], 5),
            }
        )
        for lab, c in frames
    ],
    ignore_index=True,
)
downloads.downloads(fig, df, f"taskspace_map_{method}_{which}", "map")
