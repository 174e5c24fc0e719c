"""Per-pair margins of an assembled space, read back from its cached base and transfer units.

Intervals, reliability and the power calculation need every eval pair's base and tuned
margins, which the units hold but older spaces do not carry. The space keeps its run config,
so the plan (:func:`~precompute.runner.build_plan`, no model loaded) names its units again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from taskspace_core.configs import ConfigError, parse_config
from taskspace_core.results import SpaceResult
from taskspace_core.space_uncertainty import pair_margins
from taskspace_core.spaces import PairMargins, SpaceError
from taskspace_core.store import Store

if TYPE_CHECKING:
    from precompute.runner import ModelPlan


def space_margins(space: SpaceResult, store: Store) -> tuple[PairMargins | None, str]:
    """The space's per-pair margins (rows in ``space.names`` order), or None and the reason."""
    held = getattr(space, "pair_margins", None)  # spaces assembled with their margins carry them
    if isinstance(held, PairMargins):
        return held, ""
    from precompute.runner import build_plan

    raw = space.config.get("run") if isinstance(space.config, dict) else None
    if not isinstance(raw, dict):
        return None, "the space does not keep its run config, so its units cannot be found"
    try:
        plan = build_plan(parse_config(raw, "the space's run config"), store, load_weights=False)
    except (ConfigError, SpaceError, OSError, ValueError) as exc:
        return None, f"its run config no longer plans ({exc})"
    mp = next((m for m in plan.models if m.fingerprint == space.model.fingerprint), None)
    if mp is None:
        return None, "its model is not in its run config's plan any more"
    return plan_margins(mp, space.names, store)


def plan_margins(mp: ModelPlan, names: Sequence[str], store: Store) -> tuple[PairMargins | None, str]:
    """Per-pair margins of one model of a plan from its cached base and transfer units (rows in ``names`` order)."""
    base, tuned = {}, {}
    for u in mp.units:
        if u.kind in ("base", "transfer"):
            value = store.get(u.key)
            if not isinstance(value, dict) or "margins" not in value:
                return None, f"a {u.kind} unit of {u.task} is missing from the cache or holds no margins"
            (base if u.kind == "base" else tuned)[u.task if u.kind == "base" else (u.task, u.other)] = value
    if set(base) != set(names) or len(tuned) != len(names) ** 2:
        return None, "the run has no exact transfer units for every pair of tasks"
    margins = pair_margins(names, base, tuned)  # the same construction as the runner's at assembly
    return (margins, "") if margins is not None else (None, "its units give too few eval pairs for an interval")
