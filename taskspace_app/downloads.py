"""Figure and data downloads: interactive HTML, PNG via kaleido, formula-safe CSV."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from taskspace_app.widgets import _md
from taskspace_core.pairfiles import safe_csv_frame

CHROMIUM = "/usr/bin/chromium"


safe_frame = safe_csv_frame  # the one formula-safe CSV writer, shared with `precompute export`


def csv_bytes(df: pd.DataFrame, index: bool = False) -> bytes:
    return safe_frame(df).to_csv(index=index).encode("utf-8")


_PNG_LOCK = threading.Lock()


@st.cache_resource(show_spinner=False)
def _kaleido_server() -> bool:
    """Start one kaleido browser for the app's lifetime (first PNG ~6 s, later ones < 1 s)."""
    import kaleido

    kaleido.start_sync_server(silence_warnings=True)
    return True


def figure_png(fig: go.Figure) -> bytes:
    """PNG bytes via kaleido with Debian's chromium; raises RuntimeError with a readable reason."""
    if not os.environ.get("BROWSER_PATH") and os.path.exists(CHROMIUM):
        os.environ["BROWSER_PATH"] = CHROMIUM
    if not os.path.exists(os.environ.get("BROWSER_PATH", CHROMIUM)):
        raise RuntimeError("PNG export needs Chromium; install it or set BROWSER_PATH to a Chrome/Chromium binary")
    try:
        with _PNG_LOCK:
            _kaleido_server()
            return fig.to_image(format="png", scale=2, width=1100, height=int(fig.layout.height or 600))
    except Exception as exc:  # noqa: BLE001 - kaleido/choreographer raise many types
        raise RuntimeError(f"PNG export failed ({type(exc).__name__}: {str(exc)[:200]})") from None


def downloads(fig: go.Figure, df: pd.DataFrame, name: str, key: str, index: bool = False) -> None:
    """Interactive HTML, PNG and CSV downloads of one figure and its data."""
    c1, c2, c3 = st.columns(3)
    c1.download_button(
        "interactive HTML",
        icon=":material/download:",
        data=lambda: fig.to_html(include_plotlyjs=True, full_html=True),
        file_name=f"{name}.html",
        mime="text/html",
        key=f"{key}_html",
        on_click="ignore",
    )
    c3.download_button(
        "data (CSV)",
        icon=":material/download:",
        data=csv_bytes(df, index=index),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        on_click="ignore",
    )
    with c2:
        _png_button(fig, name, key)


@st.fragment
def _png_button(fig: go.Figure, name: str, key: str) -> None:
    # a fragment: making the PNG reruns only this button, not the whole page
    state = f"{key}_png_bytes"
    if st.session_state.get(state) is None:
        if st.button("make PNG", key=f"{key}_png_make", icon=":material/image:"):
            with st.spinner("rendering PNG…"):
                try:
                    st.session_state[state] = figure_png(fig)
                except RuntimeError as exc:
                    st.session_state[state] = None
                    st.warning(_md(str(exc)))
                    return
            st.rerun(scope="fragment")
    else:
        st.download_button(
            "PNG",
            icon=":material/download:",
            data=st.session_state[state],
            file_name=f"{name}.png",
            mime="image/png",
            key=f"{key}_png",
            on_click="ignore",
        )


def matrix_frame(M: Any, names: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(M, index=list(names), columns=list(names))


def table_download(df: pd.DataFrame, label: str, name: str, key: str) -> None:
    """One formula-safe CSV download of a table (e.g. every T cell with its 95% interval)."""
    st.download_button(
        label,
        icon=":material/download:",
        data=csv_bytes(df),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=key,
        on_click="ignore",
    )
