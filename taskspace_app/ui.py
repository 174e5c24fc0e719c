"""Page helpers: URL-bound widgets, series/model pickers, figure downloads, empty states, job panels."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from precompute import jobs
from taskspace_app import auth, data
from taskspace_app.auth import current_user
from taskspace_core.pairfiles import safe_csv_frame

CHROMIUM = "/usr/bin/chromium"

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


# ------------------------------------------------------------------ pickers


def empty_state(what: str) -> None:
    """Explain what to run when the cache holds nothing for this view."""
    st.info(
        f"Nothing to show yet: {what}\n\n"
        "Results appear here once an analysis has run. Start the default analysis on the **Home** page, "
        "or choose models and tasks on the **Run** page (or on the command line: "
        "`python -m precompute run --config configs/default.yaml`)."
    )


def pick_series(container: Any = None) -> data.Series | None:
    """Sidebar picker of a series (sizes x checkpoints on one task set), bound to ``series``."""
    box = container or st.sidebar
    found = data.all_series()
    if not found:
        return None
    by_id = {s.id: s for s in found}
    sid = bound(
        "selectbox",
        "Series · task set",
        list(by_id),
        "series",
        container=box,
        format_func=lambda i: f"{by_id[i].series} · {by_id[i].taskset} ({len(by_id[i].records)} models)",
    )
    return by_id[sid]


def short_label(rec: dict[str, Any]) -> str:
    """'360M · step 1000' for a model of a series, else its name (compact axis labels)."""
    size, step = rec.get("size_label"), rec.get("step")
    if size and step is not None:
        return f"{size} · step {step}"
    return data.model_name(rec)


def model_label(rec: dict[str, Any]) -> str:
    step = rec.get("step")
    size = rec.get("size_label") or ""
    extra = " · ".join(x for x in (str(size), f"step {step}" if step is not None else "") if x)
    return f"{data.model_name(rec)}" + (f" ({extra})" if extra else "")


def pick_model(series: data.Series, container: Any = None, param: str = "model") -> dict[str, Any]:
    """Picker of one model of a series; the URL holds its label (``model``) and revision (``rev``)."""
    box = container or st.sidebar
    recs = {r["key"]: r for r in series.records}
    wkey = f"qp_{param}"
    if wkey not in st.session_state or st.session_state[wkey] not in recs:
        name, rev = st.query_params.get(param), st.query_params.get("rev")
        match = [k for k, r in recs.items() if data.model_name(r) == name]
        match = [k for k in match if str(recs[k].get("revision") or "") == (rev or "")] or match
        st.session_state[wkey] = match[0] if match else list(recs)[-1]  # default: the largest, latest model
    key = box.selectbox("Model", list(recs), key=wkey, format_func=lambda k: model_label(recs[k]))
    rec = recs[key]
    st.query_params[param] = data.model_name(rec)
    st.query_params["rev"] = str(rec.get("revision") or "")
    return rec


def pick_matrix(options: Sequence[str], container: Any = None, default: str = "profile") -> str:
    box = container or st.sidebar
    return bound(
        "selectbox",
        "Task space",
        list(options),
        "matrix",
        default,
        container=box,
        format_func=lambda k: data.MATRICES[k][0],
    )


def pick_estimate(sp: Any, which: str = "T", container: Any = None) -> str:
    """The estimate feeding view ``which`` (e.g. exact T or its first-order estimate), when the space has several."""
    choices = dict(data.estimate_choices(sp, which))
    if not choices:
        return "exact"
    return bound(
        "radio",
        "Transfer estimate",
        list(choices),
        "estimate",
        "exact",
        container=container or st.sidebar,
        format_func=lambda k: choices[k],
        horizontal=True,
    )


# ------------------------------------------------------------------ downloads


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


# ------------------------------------------------------------------ jobs


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(s)
    return (
        f"{s // 3600} h {s % 3600 // 60} min" if s >= 3600 else (f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s")
    )


def queue_text(status: jobs.JobStatus) -> str:
    """'position 2 · starts in about 3 min' for a waiting job."""
    when = "start time unknown" if status.starts_in_s is None else f"starts in about {fmt_seconds(status.starts_in_s)}"
    return f"position {status.position or '?'} on {status.device or 'its device'} · {when}"


def job_card(status: jobs.JobStatus, key: str) -> None:
    """One job: progress or queue place, ETA, cancel; error and log tail when it failed.

    Cancel and the log are offered to the job's owner and admins only (the jobs functions
    refuse everyone else too)."""
    user = current_user()
    mine = jobs.may_manage(status, user)
    icon = {
        "queued": ":material/schedule:",
        "running": ":material/hourglass_top:",
        "starting": ":material/hourglass_top:",
        "done": ":material/check_circle:",
        "failed": ":material/error:",
        "cancelled": ":material/stop_circle:",
    }.get(status.state, "")
    with st.container(border=True):
        owner = f" · by {_md(status.owner)}" if status.owner else ""
        st.markdown(f"{icon} **{_md(status.name)}** · `{status.id}` · {status.state}{owner}")
        if status.state == "queued":
            st.caption(f"waiting for a free runner: {_md(queue_text(status))}")
        elif not status.final:
            st.progress(status.fraction, text=f"{status.done} / {status.total} units · ETA {fmt_seconds(status.eta_s)}")
            if status.by_type:
                st.caption(" · ".join(f"{_md(t)}: {d}/{n}" for t, (d, n) in status.by_type.items()))
            if status.message:
                st.caption(_md(status.message))
        if (
            not status.final
            and mine
            and st.button("Cancel", key=f"cancel_{key}_{status.id}", disabled=not auth.may_work())
        ):
            try:
                jobs.cancel_job(status.id, user=user)
                st.toast("cancel requested")
            except jobs.JobError as exc:
                st.error(_md(str(exc)))
        if status.state == "failed" and mine:
            st.error(f"The job failed: {_md(status.message or 'no message')}")
            st.code(jobs.log_tail(status.id, user=user) or "(empty log)", language=None)
        elif status.state == "failed":  # its message quotes the log's last line: the owner's to read
            st.error("The job failed; its owner and admins can read why.")
        elif status.state == "done":
            st.caption(f"finished {time.strftime('%Y-%m-%d %H:%M', time.localtime(status.updated or status.started))}")


def _md(text: str) -> str:
    """Escape Markdown/HTML specials in user text shown through st.markdown."""
    out = str(text).replace("\\", "\\\\").replace("\n", " ")
    for ch in "`*_[]<>#|~$":
        out = out.replace(ch, "\\" + ch)
    return out


def md(text: str) -> str:
    return _md(text)


def jobs_panel(key: str, only: Sequence[str] | None = None, limit: int = 5) -> None:
    """Live list of jobs, polled every 2 s while any runs; the whole page reruns when one ends
    (so the new results show up in the page's tables and pickers)."""
    statuses = [s for s in jobs.list_jobs() if only is None or s.id in only][:limit]
    running = tuple(s.id for s in statuses if not s.final)
    _jobs_fragment(key, tuple(s.id for s in statuses), running)


def promote_waiting() -> None:
    """Start queued jobs whose device has a free runner (idempotent; a read-only cache is no error)."""
    with contextlib.suppress(OSError):
        jobs.promote(data.cache_path())


def _jobs_fragment(key: str, ids: tuple[str, ...], running: tuple[str, ...]) -> None:
    @st.fragment(run_every=2.0 if running else None)
    def show() -> None:
        promote_waiting()
        ended = False
        for jid in ids:
            s = jobs.job_status(jid)
            if s is not None:
                job_card(s, key)
                ended |= jid in running and s.final
        if ended:
            data.entries.clear()  # new spaces may have been written
            st.rerun(scope="app")

    show()


def _series_or_stop() -> data.Series:
    series = pick_series()
    if series is None:
        empty_state("no task space is in the cache.")
        st.stop()
    return series


def _loaded_or_stop(rec: dict[str, Any]) -> Any:
    sp = data.load(rec)
    if sp is None:
        st.error("This result could not be read from the cache (it may have been written by another version).")
        st.stop()
    return sp


def pick_series_reference() -> tuple[data.Series, Any]:
    """Series picker plus the space of its last model (the reference of series-wide views)."""
    series = _series_or_stop()
    return series, _loaded_or_stop(series.records[-1])


def pick_space() -> tuple[data.Series, dict[str, Any], Any]:
    """Series and model pickers plus the chosen space, or an empty state and stop."""
    series = _series_or_stop()
    rec = pick_model(series)
    return series, rec, _loaded_or_stop(rec)
