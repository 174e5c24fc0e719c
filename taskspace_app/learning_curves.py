"""Learning curves of the offline model suites (``precompute pretrain``) found under the cache."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from taskspace_app import downloads, widgets
from taskspace_core import plots
from taskspace_core.paths import cache_dir
from taskspace_core.pretrain_eval import curve_frame, find_suites


@st.cache_data(ttl=30, show_spinner=False)
def _read(path: str, mtime: float) -> dict:  # mtime: a suite still training is read again
    return json.loads(Path(path).read_text(encoding="utf-8"))


def show() -> None:
    """Pick a suite.json under the cache; plot held-out loss and BLiMP accuracy per category by tokens."""
    root = cache_dir()
    found = find_suites(root)
    if not found:
        # A caption, not st.info: the view's own empty-state message stays the page's first notice.
        st.caption(
            widgets.md(f"No suite.json under {root}: train one with `python -m precompute pretrain --preset learns`.")
        )
        return
    labels = [str(p.parent.relative_to(root)) for p in found]
    pick = st.selectbox("Model suite", labels, key="learning_curve_suite") if len(found) > 1 else labels[0]
    path = found[labels.index(pick)]
    df = curve_frame(_read(str(path), path.stat().st_mtime))
    if df.empty:
        st.caption("This suite has no checkpoints yet.")
        return
    if df["metric"].nunique() == 1:
        st.caption("No accuracies in this suite.json: train with --eval (on with --preset) to score each checkpoint.")
    fig = plots.learning_curves(df, title=f"Learning curves of {pick}")
    st.plotly_chart(fig, width="stretch", key="learning_curves")
    downloads.downloads(fig, df, "taskspace_learning_curves", "lcurve")
