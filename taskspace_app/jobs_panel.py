"""Job cards and the live jobs panel: progress, queue place, cancel, failure log; promoting queued jobs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import streamlit as st

from precompute import jobs
from taskspace_app import auth, reading
from taskspace_app.auth import current_user
from taskspace_app.widgets import _md, fmt_seconds


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


def jobs_panel(key: str, only: Sequence[str] | None = None, limit: int = 5) -> None:
    """Live list of jobs, polled every 2 s while any runs; the whole page reruns when one ends
    (so the new results show up in the page's tables and pickers)."""
    statuses = [s for s in jobs.list_jobs() if only is None or s.id in only][:limit]
    running = tuple(s.id for s in statuses if not s.final)
    _jobs_fragment(key, tuple(s.id for s in statuses), running)


def promote_waiting() -> None:
    """Start queued jobs whose device has a free runner (idempotent; a read-only cache is no error)."""
    with contextlib.suppress(OSError):
        jobs.promote(reading.cache_path())


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
            reading.entries.clear()  # new spaces may have been written
            st.rerun(scope="app")

    show()


def plan_panel(config: dict, button: Any, key: str, state: str) -> tuple[str, dict | None]:
    """A "Show the plan" button in ``button`` (a column) and, once pressed, the plan's unit counts and ETA.

    Returns the job id of ``config`` and its plan (None until planned; ``{"error": ...}`` when planning
    failed). ``key`` (the button's) and ``state`` (where the plan is kept) must differ: Streamlit
    refuses a widget key that the page also writes to.
    """
    import pandas as pd

    jid = jobs.job_id(config)
    if button.button("Show the plan", key=key):
        with st.spinner("planning (the runner checks the cache)…"):
            try:
                st.session_state[state] = (jid, jobs.plan(config))
            except (jobs.JobError, OSError) as exc:
                st.session_state[state] = (jid, {"error": str(exc)})
    got = st.session_state.get(state)
    plan = got[1] if got and got[0] == jid else None
    if plan is None:
        return jid, None
    if "error" in plan:
        st.error(_md(plan["error"]))
        return jid, plan
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("units", plan.get("units_total", "?"))
    m2.metric("cached", plan.get("units_cached", "?"))
    m3.metric("to do", plan.get("units_todo", "?"))
    m4.metric("estimated time", fmt_seconds(plan.get("estimated_seconds")))
    if plan.get("by_type"):
        st.dataframe(pd.DataFrame(plan["by_type"]).T, width="stretch")
    if plan.get("unfingerprinted"):
        st.caption(_md("Not loaded to plan, so counted as not cached: " + ", ".join(plan["unfingerprinted"])))
    return jid, plan
