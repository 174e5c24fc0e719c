"""taskspace: explore the linguistic task spaces of language models (``streamlit run app.py``).

This file only sets up the page and the navigation; each view is a thin page script in
``taskspace_app/views/`` that reads results through ``taskspace_core.store`` and draws with
``taskspace_core.plots``. No model runs in the app's own process: long work goes to
``precompute`` background jobs.

The views deliberately do not live in a top-level ``pages/`` folder: when that folder exists,
Streamlit (1.5x) decides per server process whether the app is a legacy "pages directory" app
before app.py has run; if the first visitor opens a deep link (e.g. ``/space``) the page script
runs without this file, and every later session gets the wrong navigation and layout.
"""

from __future__ import annotations

import streamlit as st

from taskspace_app import auth, reading
from taskspace_app.jobs_panel import promote_waiting

st.set_page_config(page_title="taskspace", page_icon=":material/explore:", layout="wide")
auth.gate()  # server mode: stop when no login is configured; the login panel in the sidebar

VIEWS = "taskspace_app/views/"
PAGES = [
    st.Page(VIEWS + "home.py", title="Home", icon=":material/home:", default=True),
    st.Page(VIEWS + "run.py", title="Run", icon=":material/play_circle:", url_path="run"),
    st.Page(VIEWS + "space.py", title="Task space", icon=":material/grid_on:", url_path="space"),
    st.Page(VIEWS + "map.py", title="Map", icon=":material/scatter_plot:", url_path="map"),
    st.Page(VIEWS + "tree.py", title="Tree", icon=":material/account_tree:", url_path="tree"),
    st.Page(
        "taskspace_app/views/overlap.py", title="Parameter overlap", icon=":material/join_inner:", url_path="overlap"
    ),
    st.Page(VIEWS + "hypotheses.py", title="Hypotheses", icon=":material/science:", url_path="hypotheses"),
    st.Page(VIEWS + "pairs.py", title="Your pairs", icon=":material/edit_note:", url_path="pairs"),
    st.Page(VIEWS + "place.py", title="Place your tasks", icon=":material/add_location_alt:", url_path="place"),
    st.Page(VIEWS + "inspect.py", title="Pair inspector", icon=":material/manage_search:", url_path="inspect"),
]

reading.start_background()  # statistics worker and UMAP warm-up, off the request path
promote_waiting()  # any page load starts queued jobs if a runner is free (a runner killed hard cannot)
st.navigation(PAGES).run()
