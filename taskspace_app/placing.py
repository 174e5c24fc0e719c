"""Adding tasks to a cached analysis and placing them (the Place view's logic; no widgets here).

* :func:`extended_config`: the analysis's own run config for its model, with saved pair sets
  added to its tasks. Units are cached per task (per task pair for transfer), so the job
  computes only the added tasks' units: O(N) per added task.
* :func:`extends` / :func:`extensions`: the cached spaces of the same model and config whose
  tasks strictly contain the analysis's tasks (where the added ones are placed).
* :func:`replicates_for`: bootstrap replicates of a T-derived view from the per-pair margins
  (``SpaceResult.pair_margins`` when the run stored them), else a note why there are none.
* :func:`neighbours_frame` / :func:`categories_frame`: the tables the view shows and exports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from taskspace_core import spaces
from taskspace_core.configs import ConfigError, ModelEntry
from taskspace_core.results import SpaceResult

T_VIEWS = {"sym": "sym", "profile": "profile"}  # symmetric views built from T (bootstrap over eval pairs)
NO_MARGINS = "point values only: this analysis stored no per-pair margins, so intervals need a rerun"


class PlacementError(ValueError):
    """Tasks cannot be added to this analysis; the message says why."""


def _same_model(m: Any, space: SpaceResult, i: int) -> bool:
    try:
        e = ModelEntry.from_dict(m, i)
    except ConfigError:
        return False
    info = space.model
    return (e.spec.name_or_path, e.spec.revision, e.step) == (info.name_or_path, info.revision, info.step)


def extended_config(space: SpaceResult, sets: Sequence[str]) -> dict[str, Any]:
    """The run config of ``space`` restricted to its model, with ``set:<name>`` sources added."""
    raw = (space.config or {}).get("run")
    if not isinstance(raw, dict) or not raw.get("tasks") or not raw.get("models"):
        raise PlacementError(
            "This analysis does not record the run config it came from; run it again from the Run page to add tasks."
        )
    if not sets:
        raise PlacementError("Choose at least one saved pair set to add.")
    have = [str(t) for t in raw["tasks"]]
    added = [f"set:{s}" for s in dict.fromkeys(sets) if f"set:{s}" not in have]
    if not added:
        raise PlacementError("These sets are already part of this analysis.")
    models = [m for i, m in enumerate(raw["models"]) if _same_model(m, space, i)] or list(raw["models"])
    name = f"{raw.get('name') or 'run'}+" + "+".join(dict.fromkeys(sets))
    return {**raw, "name": name, "models": models, "tasks": have + added}


def _config_core(space: SpaceResult) -> dict[str, Any]:
    return {k: v for k, v in (space.config or {}).items() if k != "run"}


def extends(base: SpaceResult, other: SpaceResult) -> bool:
    """Whether ``other`` is ``base``'s model under the same config on a strict superset of its tasks."""
    a, b = base.model, other.model
    same_model = (a.fingerprint, a.revision, a.step) == (b.fingerprint, b.revision, b.step)
    return same_model and _config_core(base) == _config_core(other) and set(base.names) < set(other.names)


def extensions(
    base_rec: dict[str, Any], base: SpaceResult, records: Sequence[dict[str, Any]], load: Callable[[dict], Any]
) -> list[dict[str, Any]]:
    """Records of the spaces that extend ``base`` (newest first, as ``records`` are listed)."""
    out = []
    for r in records:
        if r["key"] == base_rec["key"] or r.get("fingerprint") != base.model.fingerprint:
            continue
        if int(r.get("n_tasks") or 0) <= len(base.names):
            continue
        sp = load(r)
        if sp is not None and extends(base, sp):
            out.append(r)
    return out


def replicates_for(
    space: SpaceResult, which: str, S: np.ndarray, estimate: str = "exact", n_boot: int = 1000, seed: int = 0
) -> tuple[np.ndarray | None, str]:
    """Replicates (B x N x N) of view ``which`` from the space's per-pair margins, or (None, why not).

    The replicates follow the view's own convention: the point space rebuilt from the
    margins must equal ``S`` (the view as shown), under one of the profile-diagonal settings.
    """
    how = T_VIEWS.get(which)
    if how is None:
        return None, "no interval: this space is not a mean over eval pairs"
    margins = getattr(space, "pair_margins", None)
    if margins is None:
        return None, NO_MARGINS
    if estimate != "exact":
        return None, "point values only: intervals are computed for the exact transfer T"
    first = spaces.resolve_profile_diagonal(S.shape[0])  # the default first: views are drawn with it
    for diagonal in (first, "include" if first == "exclude" else "exclude"):
        try:
            T0, reps = spaces.transfer_replicates(margins, how, space.metric, n_boot, seed, diagonal)  # type: ignore[arg-type]
        except spaces.SpaceError as exc:
            return None, f"no interval: {exc}"
        point = spaces.symmetrise_stack(T0[None], how, diagonal, spaces.usable_self_transfer(T0)[0])[0]  # type: ignore[arg-type]
        if np.allclose(point, S, atol=1e-6):
            return reps, f"95% bootstrap intervals over eval pairs ({n_boot} resamples)"
        if how == "sym":
            break
    return None, "point values only: the stored margins do not reproduce this space"


def _fmt_ci(low: float, high: float) -> str:
    return "" if not (np.isfinite(low) and np.isfinite(high)) else f"[{low:.3f}, {high:.3f}]"


def neighbours_frame(placement: spaces.Placement, labels: dict[str, str], level: str) -> pd.DataFrame:
    """One row per other task, nearest first."""
    rows = [
        {
            "rank": k + 1,
            "task": n.task,
            level: labels.get(n.task, ""),
            "similarity": round(n.similarity, 4),
            "95% interval": _fmt_ci(n.low, n.high),
            "nearest in % of resamples": None if np.isnan(n.nearest_share) else round(100 * n.nearest_share, 1),
            "added too": n.added,
        }
        for k, n in enumerate(placement.neighbours)
    ]
    return pd.DataFrame(rows)


def categories_frame(by_view: dict[str, spaces.Placement], view_label: Callable[[str], str]) -> pd.DataFrame:
    """One row per task space: the best-fitting category, its margin, support and p."""
    rows = []
    for which, p in by_view.items():
        c = p.category
        row: dict[str, Any] = {"task space": view_label(which)}
        if c is None:
            row["best category"] = f"n/a ({p.note})"
        else:
            row.update(
                {
                    "best category": c.category,
                    "mean similarity": round(c.mean_similarity, 4),
                    "runner-up": c.runner_up,
                    "margin": round(c.margin, 4),
                    "margin 95% interval": _fmt_ci(c.margin_low, c.margin_high),
                    "bootstrap support %": None if np.isnan(c.support) else round(100 * c.support, 1),
                    "permutation p": round(c.p_value, 4),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)
