"""Your pairs: upload and validate minimal pairs, or write a paradigm; save as a task set for Run."""

from __future__ import annotations

import difflib
from pathlib import Path

import pandas as pd
import streamlit as st

from taskspace_app import auth, reading, widgets
from taskspace_app.validation import check_set_name, read_upload
from taskspace_core import tasksets
from taskspace_core.builtin.yaml_text import MAX_PARADIGM_BYTES
from taskspace_core.tasks import Task, TaskError, TaskSet

TEMPLATE = """name: my_reflexive_gender
category: anaphor_agreement
field: morphology
description: A reflexive object must match the gender of a gendered common-noun subject.
change: substitute
slots:
  d: [the, this, that, a]
  n: {from: noun, where: {gender: [m, f]}}
  v: {from: verb, where: {classes: refl}}
  refl: {from: reflexive, where: {gender: $n.gender, num: sg}}
  wrong: {from: reflexive, where: {gender: "!$n.gender", num: sg}}
good: "{d} {n.sg} {v.past} {refl}."
bad: "{d} {n.sg} {v.past} {wrong}."
"""


def marked(a: str, b: str) -> tuple[str, str]:
    """Both sentences with the differing tokens wrapped in « » (plain text: shown escaped)."""
    ta, tb = a.split(), b.split()
    out_a, out_b = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=ta, b=tb, autojunk=False).get_opcodes():
        wa, wb = " ".join(ta[i1:i2]), " ".join(tb[j1:j2])
        out_a.append(wa if op == "equal" or not wa else f"«{wa}»")
        out_b.append(wb if op == "equal" or not wb else f"«{wb}»")
    return " ".join(x for x in out_a if x), " ".join(x for x in out_b if x)


def preview(ts: TaskSet, limit: int = 200) -> None:
    counts = pd.DataFrame(
        [{"task": t.name, "pairs": len(t), "category": t.category, "field": t.field, **dict(t.tags)} for t in ts]
    )
    st.markdown("**Pairs per task**")
    st.dataframe(counts, hide_index=True, width="stretch")
    rows = []
    for t in ts:
        for p in t.pairs:
            g, b = marked(p.good, p.bad)
            rows.append({"task": t.name, "good": g, "bad": b})
            if len(rows) >= limit:
                break
    st.markdown(f"**Preview** (first {len(rows)} pairs; « » mark the tokens that differ)")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def save_box(ts: TaskSet, key: str, default_name: str) -> None:
    """Name and save a task set (``<cache>/tasksets/``), then offer to send it to Run.

    An existing name with other pairs is never overwritten: the user chooses a new name
    or replaces it, which saves a new version and keeps the old one."""
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    name = c1.text_input("Save as task set named", value=default_name, key=f"{key}_name")
    err = check_set_name(name)
    if err:
        c1.caption(err)
    if c2.button("Save", key=f"{key}_save", icon=":material/save:", disabled=err is not None or not auth.may_work()):
        _save(ts, name, replace=False)
    conflict = st.session_state.get("pairs_conflict")
    if conflict and conflict[0] == name:
        st.warning(f"{widgets.md(conflict[1])}.")
        if st.button(f"Replace '{name}' (keeps the old version)", key=f"{key}_replace", icon=":material/sync:"):
            _save(ts, name, replace=True)
    saved = st.session_state.get("pairs_saved")
    if saved:
        st.success(f"Saved as task set `{saved}` (task source `set:{saved}`).")
        if st.button("Use it on the Run page", key=f"{key}_send", icon=":material/play_arrow:"):
            base = saved.partition("@")[0]  # Run lists each set once and starts its latest version
            # only this set: an empty "builtin" leaves the default built-in paradigms unselected
            st.switch_page("taskspace_app/views/run.py", query_params={"sets": base, "builtin": ""})
        if st.button("Place it in a cached analysis", key=f"{key}_place", icon=":material/add_location_alt:"):
            st.switch_page("taskspace_app/views/place.py", query_params={"add": saved.partition("@")[0]})


def _save(ts: TaskSet, name: str, replace: bool) -> None:
    st.session_state.pop("pairs_conflict", None)
    st.session_state.pop("pairs_saved", None)
    try:
        stored = tasksets.owned_name(auth.set_owner(), name)  # on a server: in this user's own folder
        st.session_state["pairs_saved"] = tasksets.save(ts, stored, reading.cache_path(), replace=replace).name
    except tasksets.TaskSetConflict as exc:
        st.session_state["pairs_conflict"] = (name, str(exc))
    except (TaskError, OSError) as exc:
        st.error(f"Could not save: {widgets.md(str(exc))}")


st.title("Your pairs")
tab_up, tab_write = st.tabs(["Upload a file", "Write a paradigm"])

with tab_up:
    st.markdown(
        "One minimal pair per row. Required columns: `sentence_good`, `sentence_bad`, `task`; optional: "
        "`category`, `field`, `description`; any other column is a tag (a hypothesis level). "
        "Formats: CSV, TSV, JSONL. Rows are numbered as in a spreadsheet (the header is row 1)."
    )
    up = None
    if auth.require_login("upload pairs"):
        up = st.file_uploader("Minimal pairs", type=["csv", "tsv", "tab", "jsonl", "ndjson"], key="pairs_upload")
    strip = st.checkbox(
        "Remove invisible characters (zero-width spaces, bidi controls)",
        key="pairs_strip",
        help="They make sentences that look the same differ; they are always reported as warnings.",
    )
    if up is not None:
        ts, report = read_upload(up.getvalue(), up.name, st.session_state, strip_invisible=strip)
        st.caption(
            widgets.md(
                f"{report.filename}: {report.n_rows} data rows, {report.n_pairs_kept} pairs kept in "
                f"{len(report.task_counts)} tasks"
            )
        )
        if report.errors:
            # a list, not a grid: each message names its row and column and must be readable as is
            lines = "\n".join(f"- {widgets.md(i.message)}" for i in report.errors)
            st.error(f"**{len(report.errors)} problem(s) must be fixed before this file can be used:**\n\n{lines}")
        if report.warnings:
            lines = "\n".join(f"- {widgets.md(i.message)}" for i in report.warnings)
            st.warning(f"**{len(report.warnings)} warning(s)** (the file can still be used):\n\n{lines}")
        if ts is not None:
            st.success(f"{len(ts)} task(s), {report.n_pairs_kept} pairs: ready to save.")
            preview(ts)
            save_box(ts, "up", Path(up.name).stem.replace(" ", "_")[:64] or "my_pairs")

with tab_write:
    st.markdown("Write a paradigm in the built-in format (slots filled from the lexicon); preview its pairs.")
    text = st.text_area(
        "Paradigm (YAML)", value=TEMPLATE, height=320, key="paradigm_text", max_chars=MAX_PARADIGM_BYTES
    )
    n = st.number_input("Pairs to generate", 10, 2000, 100, step=10, key="paradigm_n")
    if st.button("Preview pairs", key="paradigm_preview"):
        try:
            from taskspace_core.builtin import load_paradigm_text

            st.session_state["paradigm_task"] = load_paradigm_text(text, int(n))
            st.session_state.pop("paradigm_error", None)
        except Exception as exc:  # noqa: BLE001 - ParadigmError, YAML errors, or the suite not installed
            st.session_state["paradigm_task"] = None
            st.session_state["paradigm_error"] = widgets.md(str(exc) or type(exc).__name__)
    if st.session_state.get("paradigm_error"):
        st.error(f"The paradigm could not be generated: {st.session_state['paradigm_error']}")
    task: Task | None = st.session_state.get("paradigm_task")
    if task is not None:
        ts = TaskSet(task.name, (task,))
        preview(ts, limit=50)
        save_box(ts, "para", task.name)
