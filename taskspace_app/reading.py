"""Cached access to the results store and the statistics the pages show.

Everything heavy is wrapped in ``st.cache_data`` keyed on (cache directory, space key,
created time, options), so a warm page renders from memory and a recomputed space (new
``created``) is never served stale. The entry listing has a short TTL so that results a
background job just wrote appear within seconds.
"""

from __future__ import annotations

import os
import re
import warnings
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from taskspace_app import auth
from taskspace_app.background import Background, stat_key
from taskspace_core import methods, spaces, tasksets
from taskspace_core.paths import cache_dir
from taskspace_core.records import SpaceRecord
from taskspace_core.results import SpaceResult, list_spaces, load_space
from taskspace_core.store import Store

# matrix id -> (label, diverging colour scale, symmetric), from the method registry
MATRICES: dict[str, tuple[str, bool, bool]] = {v.id: (v.label, v.diverging, v.symmetric) for v in methods.views()}
SYMMETRIC = [k for k, v in MATRICES.items() if v[2]]


def cache_path() -> str:
    return str(cache_dir())


@st.cache_resource(show_spinner=False)
def _store(directory: str) -> Store:
    return Store(directory)


@st.cache_data(ttl=3, show_spinner=False)
def _entries(directory: str) -> list[SpaceRecord]:
    return list_spaces(_store(directory))


def visible(records: list[Any]) -> list[Any]:
    """The records this session may see: on a shared server, results built from another user's
    saved sets show that user's sentences and are left out (admins see all)."""
    user = auth.current_user()
    return [r for r in records if tasksets.may_see(tasksets.result_owners(r), user.name, bool(user.is_admin))]


def entries(directory: str) -> list[SpaceRecord]:
    """The record of every assembled space this session may see (cheap: no result is read);
    records read like dicts. The listing is cached for all sessions, the filter is per session."""
    return visible(_entries(directory))


entries.clear = _entries.clear  # type: ignore[attr-defined]  # a job that wrote spaces clears the listing


@st.cache_data(max_entries=256, show_spinner=False)
def _load(directory: str, key: str, created: float) -> SpaceResult | None:
    return load_space(_store(directory), key)


def load(rec: dict[str, Any]) -> SpaceResult | None:
    return _load(cache_path(), rec["key"], float(rec.get("created", 0)))


_SIZE = re.compile(r"^\s*([\d.]+)\s*([kKmMbBtT]?)")


def size_value(label: str) -> float:
    """'135M' -> 1.35e8, '1.7B' -> 1.7e9; unknown labels sort last by text."""
    m = _SIZE.match(label or "")
    if not m:
        return float("inf")
    mult = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[m.group(2).lower()]
    try:
        return float(m.group(1)) * mult
    except ValueError:
        return float("inf")


def model_sort_key(rec: dict[str, Any]) -> tuple[float, str, int]:
    step = rec.get("step")
    return (
        size_value(str(rec.get("size_label") or "")),
        str(rec.get("size_label") or ""),
        int(step) if step is not None else 10**12,
    )


@dataclass(frozen=True)
class Series:
    """The spaces of one series on one task set (sizes x checkpoints), ordered by size then step."""

    series: str
    taskset: str
    records: tuple[dict[str, Any], ...]

    @property
    def id(self) -> str:
        return f"{self.series}|{self.taskset}"

    @property
    def sizes(self) -> list[str]:
        return list(dict.fromkeys(str(r.get("size_label") or "") for r in self.records))

    @property
    def steps(self) -> list[int]:
        return sorted({int(r["step"]) for r in self.records if r.get("step") is not None})


def all_series(directory: str | None = None) -> list[Series]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in entries(directory or cache_path()):
        groups.setdefault((str(rec.get("series") or "(no series)"), str(rec.get("tasks") or "")), []).append(rec)
    return [Series(s, t, tuple(sorted(recs, key=model_sort_key))) for (s, t), recs in groups.items()]


def model_name(rec: dict[str, Any]) -> str:
    return str(rec.get("model") or rec["key"])


# ------------------------------------------------------------------ matrices and statistics


def transfer_source(sp: SpaceResult, estimate: str = "exact") -> tuple[np.ndarray | None, str]:
    """T or its first-order estimate (METHODS s4b), and a label saying which one it is."""
    M, method = methods.family_source(sp, "transfer", estimate)
    return M, (
        method.estimate.replace("_", "-") + (" estimate" if method.estimate != "exact" else "") if method else ""
    )


def available(sp: SpaceResult, symmetric_only: bool = False) -> list[str]:
    """Ids of the registered matrix views this space can show."""
    return [v.id for v in methods.views() if v.present(sp) and (not symmetric_only or v.symmetric)]


def uses_estimate(which: str) -> bool:
    """Whether view ``which`` is fed by a family's chosen estimate (its caption names it)."""
    return methods.view(which).uses_estimate


def estimate_choices(sp: SpaceResult, which: str) -> list[tuple[str, str]]:
    """(estimate, label) the user may pick for view ``which`` (empty unless it is fed by several)."""
    v = methods.view(which)
    if not v.uses_estimate:
        return []
    fams = {m.family for m in methods.methods() if m.family and set(m.fields) & set(v.sources)}
    found = [m for f in sorted(fams) for m in methods.estimates(sp, f)]
    return [(m.estimate, m.estimate.replace("_", "-")) for m in found] if len(found) > 1 else []


@st.cache_data(max_entries=512, show_spinner=False)
def _matrix(directory: str, key: str, created: float, which: str, estimate: str) -> tuple[np.ndarray, list[str]]:
    sp = _load(directory, key, created)
    assert sp is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", spaces.SpaceWarning)
        M = methods.view(which).make(sp, estimate)
    notes = [str(w.message) for w in caught]
    return np.asarray(M, dtype=float), notes


def matrix(rec: dict[str, Any], which: str, estimate: str = "exact") -> tuple[np.ndarray, list[str]]:
    """The task-by-task matrix ``which`` of a space, and any warnings from building it."""
    return _matrix(cache_path(), rec["key"], float(rec.get("created", 0)), which, estimate)


def _hypothesis(sp: SpaceResult, level: str, custom: tuple[tuple[str, ...], tuple[float, ...]] | None) -> Any:
    if custom is None:
        return spaces.HypothesisSpace.from_labels(level, sp.names, sp.labels(level))
    import pandas as pd

    names, flat = custom
    n = len(names)
    frame = pd.DataFrame(np.array(flat).reshape(n, n), index=list(names), columns=list(names))
    return spaces.HypothesisSpace.from_matrix(frame, sp.names, "uploaded")[0]


def fit_for(
    rec: dict[str, Any],
    which: str,
    estimate: str,
    level: str,
    n_perm: int,
    custom: tuple[tuple[str, ...], tuple[float, ...]] | None = None,
) -> dict[str, Any]:
    """Fit statistics of one space to one hypothesis level (or a custom matrix), as a dict; for the transfer
    views of an exact run with 95% bootstrap intervals and the noise ceiling (:func:`space_uncertainty.fit_row`).

    Computed once per (space, settings) on the background worker and kept in the store; the
    first time, a spinner names the permutation test being run."""
    from taskspace_core.space_uncertainty import fit_row

    directory, key, created = cache_path(), rec["key"], float(rec.get("created", 0))
    sp = _load(directory, key, created)
    assert sp is not None
    S, _ = _matrix(directory, key, created, which, estimate)
    H = _hypothesis(sp, level, custom)  # cheap, and raises SpaceError for a bad level here
    settings = {"which": which, "estimate": estimate, "level": level, "n_perm": n_perm, "custom": custom}
    fut = background().submit(
        stat_key(key, created, "fit", **settings),
        lambda: fit_row(sp, which, S, H, n_perm, seed=0, estimate=estimate),
        model=model_name(rec),
        tasks=rec.get("tasks"),
    )
    return _wait(fut, f"computing the Mantel test ({n_perm:,} permutations) of {level} on {model_name(rec)}…")


def _embedding(S: np.ndarray, method: str) -> dict[str, Any]:
    if method == "umap":
        return background().umap(S)  # in UMAP's own process, where numba has compiled it
    return {"coords": spaces.mds_embedding(S, seed=0).coords, "note": ""}


UMAP_WARMING = (
    "UMAP is still being compiled (numba, once per server start, about a minute); "
    "showing MDS until it is ready: choose UMAP again shortly."
)


def layout(rec: dict[str, Any], which: str, estimate: str, method: str) -> tuple[np.ndarray, str]:
    """2-D layout of a space (MDS or UMAP of D = 1 - S_scaled) and a note if UMAP fell back.

    Computed once per (space, settings) on the background worker and kept in the store. While
    UMAP's warm-up runs, a UMAP layout not computed before is shown as MDS with a note."""
    directory, key, created = cache_path(), rec["key"], float(rec.get("created", 0))
    bg = background()
    stat = stat_key(key, created, "layout", which=which, estimate=estimate, method=method)
    if method == "umap" and bg.umap_warming() and bg.peek(stat) is None:
        coords, _ = layout(rec, which, estimate, "mds")
        return coords, UMAP_WARMING
    S, _ = _matrix(directory, key, created, which, estimate)
    fut = bg.submit(stat, lambda: _embedding(S, method), model=model_name(rec), tasks=rec.get("tasks"))
    got = _wait(fut, f"computing the {method.upper()} layout of {model_name(rec)}…")
    return np.asarray(got["coords"], dtype=float), str(got["note"])


def _headline_value(sp: SpaceResult, store: Store) -> dict[str, Any] | None:
    from precompute.margins import space_margins
    from taskspace_core.headline import category_headline

    found = category_headline(sp, *space_margins(sp, store))
    return None if found is None else found.as_dict()


def headline(rec: dict[str, Any]) -> str | None:
    """The one-sentence category result of a space (computed once on the worker, kept in the store), or None."""
    from taskspace_core.headline import Headline

    directory, key, created = cache_path(), rec["key"], float(rec.get("created", 0))
    sp = _load(directory, key, created)
    if sp is None:
        return None
    store = _store(directory)
    fut = background().submit(
        stat_key(key, created, "headline"),
        lambda: _headline_value(sp, store),
        model=model_name(rec),
        tasks=rec.get("tasks"),
    )
    found = _wait(fut, f"computing the category result of {model_name(rec)} (bootstrap over eval pairs)…")
    if found is None:
        return None
    return Headline(**{**found, "ci": tuple(found["ci"]) if found["ci"] else None}).sentence()


def findings(records: list[dict[str, Any]], which: str = "profile", estimate: str = "exact") -> dict[str, Any]:
    """The three series findings (:mod:`taskspace_core.series_findings`) of these spaces: report lines and
    the per-model table (records), computed once per (spaces, settings) on the background worker."""
    from taskspace_core.series_findings import series_findings

    directory = cache_path()
    recs = sorted(records, key=lambda r: r["key"])
    spaces_ = [s for s in (_load(directory, r["key"], float(r.get("created", 0))) for r in recs) if s is not None]

    def compute() -> dict[str, Any]:
        found = series_findings(spaces_, space=which, estimate=estimate)
        return {"report": found.report(), "table": found.table().to_dict("list")}

    ids = tuple((r["key"], float(r.get("created", 0))) for r in recs)
    fut = background().submit(
        stat_key(recs[0]["key"], ids[0][1], "findings", spaces=ids, which=which, estimate=estimate), compute
    )
    return _wait(fut, f"testing the series findings over {len(spaces_)} models (bootstrap over tasks, Mantel tests)…")


# ------------------------------------------------------------------ the background worker


@st.cache_resource(show_spinner=False)
def _background(directory: str) -> Background:
    return Background(_store(directory))


def background() -> Background:
    """The app's background worker for statistics (one per cache directory and server process)."""
    return _background(cache_path())


def start_background() -> None:
    """Start the worker and UMAP's numba warm-up (unless ``TASKSPACE_UMAP_WARMUP=0``); cheap after the first call."""
    bg = background()
    if os.environ.get("TASKSPACE_UMAP_WARMUP", "1") != "0":
        bg.warm_umap()


def _wait(fut: Future, label: str) -> Any:
    """The future's value; while it is computed, a spinner says what is being computed."""
    if not fut.done():
        with st.spinner(label):
            return fut.result()
    return fut.result()
