"""Sidebar pickers of a series, a model, a task-space matrix and its transfer estimate, and their labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from taskspace_app import reading
from taskspace_app.widgets import bound, empty_state


def pick_series(container: Any = None) -> reading.Series | None:
    """Sidebar picker of a series (sizes x checkpoints on one task set), bound to ``series``."""
    box = container or st.sidebar
    found = reading.all_series()
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
    return reading.model_name(rec)


def model_label(rec: dict[str, Any]) -> str:
    step = rec.get("step")
    size = rec.get("size_label") or ""
    extra = " · ".join(x for x in (str(size), f"step {step}" if step is not None else "") if x)
    return f"{reading.model_name(rec)}" + (f" ({extra})" if extra else "")


def pick_model(series: reading.Series, container: Any = None, param: str = "model") -> dict[str, Any]:
    """Picker of one model of a series; the URL holds its label (``model``) and revision (``rev``)."""
    box = container or st.sidebar
    recs = {r["key"]: r for r in series.records}
    wkey = f"qp_{param}"
    if wkey not in st.session_state or st.session_state[wkey] not in recs:
        name, rev = st.query_params.get(param), st.query_params.get("rev")
        match = [k for k, r in recs.items() if reading.model_name(r) == name]
        match = [k for k in match if str(recs[k].get("revision") or "") == (rev or "")] or match
        st.session_state[wkey] = match[0] if match else list(recs)[-1]  # default: the largest, latest model
    key = box.selectbox("Model", list(recs), key=wkey, format_func=lambda k: model_label(recs[k]))
    rec = recs[key]
    st.query_params[param] = reading.model_name(rec)
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
        format_func=lambda k: reading.MATRICES[k][0],
    )


def pick_estimate(sp: Any, which: str = "T", container: Any = None) -> str:
    """The estimate feeding view ``which`` (e.g. exact T or its first-order estimate), when the space has several."""
    choices = dict(reading.estimate_choices(sp, which))
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


def _series_or_stop() -> reading.Series:
    series = pick_series()
    if series is None:
        empty_state("no task space is in the cache.")
        st.stop()
    return series


def _loaded_or_stop(rec: dict[str, Any]) -> Any:
    sp = reading.load(rec)
    if sp is None:
        st.error("This result could not be read from the cache (it may have been written by another version).")
        st.stop()
    return sp


def pick_series_reference() -> tuple[reading.Series, Any]:
    """Series picker plus the space of its last model (the reference of series-wide views)."""
    series = _series_or_stop()
    return series, _loaded_or_stop(series.records[-1])


def pick_space() -> tuple[reading.Series, dict[str, Any], Any]:
    """Series and model pickers plus the chosen space, or an empty state and stop."""
    series = _series_or_stop()
    rec = pick_model(series)
    return series, rec, _loaded_or_stop(rec)
