"""Home: what is in the cache, a one-click default analysis, and links to every view."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st
import yaml

from precompute import jobs
from taskspace_app import auth, downloads, jobs_panel, reading, widgets
from taskspace_app.auth import current_user

DEFAULT_CONFIG = jobs.REPO_ROOT / "configs" / "default.yaml"

st.title("taskspace")
st.caption(
    "Explore the linguistic task spaces of language models: how learning one phenomenon from minimal pairs "
    "transfers to others, which parameters each phenomenon uses, and whether the space matches linguistic "
    "categories (Weber et al., ACL 2024)."
)

recs = reading.entries(reading.cache_path())


def _load_default() -> dict | None:
    try:
        cfg = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
        return cfg if isinstance(cfg, dict) else None
    except (OSError, yaml.YAMLError):
        return None


def default_run_box() -> None:
    cfg = _load_default()
    with st.container(border=True):
        st.subheader("Run the default analysis")
        st.write(
            "Offline SmolLM2-135M and its random-init step 0 on the built-in paradigm suite: transfer and "
            "gradient task spaces. It runs in the background; you can close this tab and come back."
        )
        if cfg is None:
            st.warning(f"The default config `{DEFAULT_CONFIG.name}` is missing or unreadable; use the Run page.")
            return
        jid = jobs.job_id(cfg)
        if auth.require_login("start work") and st.button(
            "Run the default analysis", type="primary", key="run_default", icon=":material/play_arrow:"
        ):
            try:
                status, joined = jobs.start_job(cfg, user=current_user())
                st.toast("joined the running default job" if joined else "default analysis started")
            except (OSError, jobs.JobError) as exc:
                st.error(f"Could not start the job: {widgets.md(str(exc))}")
        if jobs.job_status(jid) is not None:
            jobs_panel.jobs_panel("home_default", only=[jid], limit=1)


def headline_record(records: list, series: str | None) -> dict | None:
    """The space the headline is about: the default series' trained model if cached, else the most
    trained model of the newest series."""
    pool = [r for r in records if r.get("series") == series] or list(records)
    if not pool:
        return None
    newest = max(pool, key=lambda r: float(r.get("created", 0))).get("series")
    pool = [r for r in pool if r.get("series") == newest]
    return max(pool, key=lambda r: (r.get("step") is None, r.get("step") or 0, float(r.get("created", 0))))


if not recs:
    st.info("The cache is empty: no task space has been computed on this machine yet.")
    default_run_box()
else:
    cfg = _load_default() or {}
    head_rec = headline_record(recs, cfg.get("series"))
    if head_rec is not None:
        with st.spinner("Fitting the category hypothesis with its interval..."):
            sentence = reading.headline(head_rec)
        if sentence:
            st.markdown(f"**Headline.** {widgets.md(sentence)}")
    st.subheader("In the cache")
    rows = [
        {
            "model": reading.model_name(r),
            "revision": r.get("revision") or "",
            "size": r.get("size_label") or "",
            "step": r.get("step"),
            "task set": r.get("tasks") or "",
            "tasks": r.get("n_tasks"),
            "series": r.get("series") or "",
            "methods": ", ".join(r.get("methods") or []),
            "computed": time.strftime("%Y-%m-%d %H:%M", time.localtime(float(r.get("created", 0)))),
        }
        for r in recs
    ]
    df = pd.DataFrame(rows)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("task spaces", len(df))
    c2.metric("models / checkpoints", df["model"].nunique())
    c3.metric("task sets", df["task set"].nunique())
    c4.metric("series", df["series"].nunique())
    st.dataframe(df, hide_index=True, width="stretch")
    st.download_button(
        "cache summary (CSV)", downloads.csv_bytes(df), "taskspace_cache.csv", "text/csv", on_click="ignore"
    )
    with st.expander("Run the default analysis again / add to the cache"):
        default_run_box()

st.subheader("Views")
cols = st.columns(4)
links = [
    ("taskspace_app/views/space.py", "Task space", "heatmaps of T, sym-T, profile, G, J"),
    ("taskspace_app/views/map.py", "Map", "MDS / UMAP layouts across checkpoints"),
    ("taskspace_app/views/tree.py", "Tree", "dendrogram and cluster agreement"),
    ("taskspace_app/views/overlap.py", "Parameter overlap", "Jaccard, lift, where masks live"),
    ("taskspace_app/views/hypotheses.py", "Hypotheses", "Spearman, Mantel p, ARI, stability"),
    ("taskspace_app/views/pairs.py", "Your pairs", "upload or write minimal pairs"),
    ("taskspace_app/views/place.py", "Place your tasks", "where your pairs land in an analysis"),
    ("taskspace_app/views/run.py", "Run", "models x tasks x methods, plan, jobs"),
]
for k, (page, title, what) in enumerate(links):
    with cols[k % 4]:
        st.page_link(page, label=title)
        st.caption(what)

running = [s for s in jobs.list_jobs() if not s.final]
if running:
    st.subheader("Running jobs")
    jobs_panel.jobs_panel("home_all", only=[s.id for s in running])
