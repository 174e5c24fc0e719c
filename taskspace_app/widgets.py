"""URL-bound widgets (selectbox/radio, multiselect, toggle), the empty state, Markdown escaping and durations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

# ------------------------------------------------------------------ query-string state


def bound(
    kind: str,
    label: str,
    options: Sequence[str],
    param: str,
    default: str | None = None,
    *,
    format_func: Callable[[str], str] = str,
    container: Any = None,
    **kw: Any,
) -> str:
    """A select-like widget (``kind``: selectbox, radio, select_slider) whose value lives in the URL as ``param``.

    On the first run the value comes from the URL (if it is a valid option), later from
    the widget; the URL is rewritten on every run, so copying it reproduces the view.
    """
    opts = [str(o) for o in options]
    wkey = f"qp_{param}"
    want = st.query_params.get(param)
    if wkey not in st.session_state or st.session_state[wkey] not in opts:
        fallback = default if default in opts else opts[0]
        st.session_state[wkey] = want if want in opts else fallback
    value = getattr(container or st, kind)(label, opts, key=wkey, format_func=format_func, **kw)
    st.query_params[param] = value
    return value


def bound_multi(
    label: str, options: Sequence[str], param: str, default: Sequence[str], container: Any = None
) -> list[str]:
    """A multiselect stored in the URL as a comma-separated list."""
    opts = [str(o) for o in options]
    wkey = f"qp_{param}"
    if wkey not in st.session_state:
        raw = st.query_params.get(param)
        chosen = [x for x in raw.split(",") if x in opts] if raw is not None else [x for x in default if x in opts]
        st.session_state[wkey] = chosen
    else:
        st.session_state[wkey] = [x for x in st.session_state[wkey] if x in opts]
    value = (container or st).multiselect(label, opts, key=wkey)
    st.query_params[param] = ",".join(value)
    return list(value)


def bound_toggle(label: str, param: str, default: bool, container: Any = None) -> bool:
    wkey = f"qp_{param}"
    if wkey not in st.session_state:
        raw = st.query_params.get(param)
        st.session_state[wkey] = (raw == "1") if raw in ("0", "1") else default
    value = bool((container or st).toggle(label, key=wkey))
    st.query_params[param] = "1" if value else "0"
    return value


def empty_state(what: str) -> None:
    """Explain what to run when the cache holds nothing for this view."""
    st.info(
        f"Nothing to show yet: {what}\n\n"
        "Results appear here once an analysis has run. Start the default analysis on the **Home** page, "
        "or choose models and tasks on the **Run** page (or on the command line: "
        "`python -m precompute run --config configs/default.yaml`)."
    )


def _md(text: str) -> str:
    """Escape Markdown/HTML specials in user text shown through st.markdown."""
    out = str(text).replace("\\", "\\\\").replace("\n", " ")
    for ch in "`*_[]<>#|~$":
        out = out.replace(ch, "\\" + ch)
    return out


def md(text: str) -> str:
    return _md(text)


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(s)
    return (
        f"{s // 3600} h {s % 3600 // 60} min" if s >= 3600 else (f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s")
    )
