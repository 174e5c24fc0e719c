"""Pair inspector: a task's pairs sorted by margin, and one pair token by token, before and after FTGD.

Reads ``pairs/...`` entries that ``python -m precompute pairs`` wrote; never runs a model here.
A missing inspection is computed by that command as a background job.
"""

from __future__ import annotations

import sys
from typing import Any

import streamlit as st

from precompute import jobs
from taskspace_app import auth, downloads, jobs_panel, pickers, reading, widgets
from taskspace_app.validation import server_mode
from taskspace_core import limits
from taskspace_core.pair_tokens import load_result, pair_frame, token_frame
from taskspace_core.plots import surprisal_figure
from taskspace_core.store import Store


@st.cache_data(ttl=3, show_spinner=False)
def _entries(directory: str) -> list[dict[str, Any]]:
    return sorted(Store(directory).entries("pairs"), key=lambda r: -float(r.get("created", 0)))


@st.cache_data(max_entries=32, show_spinner=False)
def _value(directory: str, key: str, created: float) -> dict[str, Any] | None:
    value = Store(directory).get(key)
    return value if isinstance(value, dict) and "before" in value else None


def _label(rec: dict[str, Any]) -> str:
    tuned = rec.get("tuned_on")
    return f"{rec.get('model', '?')} · {rec.get('task', '?')}" + (f" · tuned on {tuned}" if tuned else "")


def _cli_args(model: dict[str, Any], sources: list[str], task: str, tuned: str | None, limit: int) -> list[str]:
    """The ``precompute pairs`` arguments; ``--opt=value`` so no value can pass for an option."""
    args = [f"--model={model['name']}", *(f"--tasks={s}" for s in sources), f"--task={task}", f"--limit={limit}"]
    if model.get("revision"):
        args.append(f"--revision={model['revision']}")
    if model.get("step0"):
        args.append("--step0")
    return args + ([f"--tuned-on={tuned}"] if tuned else [])


def show(rec: dict[str, Any]) -> None:
    value = _value(reading.cache_path(), rec["key"], float(rec.get("created", 0)))
    if value is None:
        st.error("This inspection could not be read from the cache (it may be from another version).")
        return
    before, after = load_result(value)
    reduction = str(value.get("reduction", "sum"))
    pairs = pair_frame(before, after, reduction)
    tuned = value.get("tuned_on")
    st.markdown(
        f"**{len(pairs)} pairs** of `{widgets.md(value.get('task', ''))}`, sorted by margin (lowest first; "
        f"log p(good) − log p(bad), {widgets.md(reduction)} over tokens)"
        + (f"; after FTGD on `{widgets.md(tuned)}`" if tuned else "")
    )
    st.dataframe(pairs, hide_index=True, width="stretch", height=260)
    rank = int(st.number_input("Pair (rank in this list)", 1, len(pairs), 1, key="inspect_rank"))
    row = pairs.iloc[rank - 1]
    st.markdown(f"good: {widgets.md(row['sentence_good'])}  \nbad: {widgets.md(row['sentence_bad'])}")
    tokens = token_frame(before, after, reduction)
    one = tokens[tokens["rank"] == rank]
    title = f"pair {rank}: margin {row['margin']:.3f}" + (f" → {row['margin_after']:.3f} after tuning" if tuned else "")
    fig = surprisal_figure(one, title=title)
    st.plotly_chart(fig, width="stretch", key="inspect_fig")
    st.caption("Shaded: from the first token where the sentences differ; before it both share the prefix.")
    downloads.downloads(fig, tokens, f"pairs-{value.get('task', 'task')}", "inspect")


def request_form() -> None:
    """Choose a task of a cached analysis and compute its inspection in the background."""
    series = pickers.pick_series(st.container())
    if series is None:
        st.caption("No analysis in the cache to take a model and tasks from. On the command line:")
        st.code("python -m precompute pairs --model smollm2-135m --tasks builtin --task NAME [--tuned-on TASK]")
        return
    rec = pickers.pick_model(series, st.container(), param="inspect_model")
    sp = reading.load(rec)
    run = (sp.config.get("run") or {}) if sp is not None else {}
    sources = [str(s) for s in run.get("tasks") or []]
    spec = next((m for m in run.get("models") or [] if isinstance(m, dict)), None) if sp else None
    if sp is None or not sources:
        st.warning("This analysis does not record its task sources; use the command line instead.")
        return
    model = {"name": sp.model.name_or_path, "revision": sp.model.revision, "step0": sp.model.step0}
    c1, c2, c3 = st.columns([2, 2, 1])
    task = c1.selectbox("Task", sp.names, key="inspect_task")
    tuned = c2.selectbox("After FTGD on", ["(none)", *sp.names], key="inspect_tuned")
    limit = int(c3.number_input("Pairs", 1, 2000, 100, key="inspect_limit"))
    args = _cli_args(model, sources, task, None if tuned == "(none)" else tuned, limit)
    st.code("python -m precompute pairs " + " ".join(args), language="bash")
    if spec and spec.get("seed"):
        st.caption("This analysis used a seeded step-0 model; the command uses seed 0.")
    refused = limits.check_request({"models": [model], "device": "auto"}, server_mode())  # header reads only
    if refused:
        st.error("Not runnable on this server: " + widgets.md("; ".join(refused)))
    elif auth.require_login("start work") and st.button("Compute in the background", key="inspect_start"):
        config = {"kind": "pairs", "name": f"pairs {task}", "args": args, "device": "auto"}
        # start_job fills {config}/{progress} in the command: braces in user text are escaped
        cmd = [sys.executable, "-m", "precompute", "pairs", *(a.replace("{", "{{").replace("}", "}}") for a in args)]
        cmd.append("--progress-file={progress}")
        try:
            status, joined = jobs.start_job(config, command=cmd, user=auth.current_user())
            st.toast("joined the same job" if joined else f"job {status.state}")
        except (OSError, jobs.JobError) as exc:
            st.error(f"Could not start: {widgets.md(str(exc))}")


st.title("Pair inspector")
found = reading.visible(_entries(reading.cache_path()))  # per session: another user's shows their sentences
if found:
    by_key = {r["key"]: r for r in found}
    key = st.selectbox("Inspection", list(by_key), format_func=lambda k: _label(by_key[k]), key="inspect_entry")
    show(by_key[key])
else:
    st.info("No pair inspection is cached yet: compute one below.")
with st.expander("Inspect another task", expanded=not found):
    request_form()
ids = [s.id for s in jobs.list_jobs() if jobs.load_config(s.id).get("kind") == "pairs"]
if ids:
    jobs_panel.jobs_panel("inspect", only=ids)
