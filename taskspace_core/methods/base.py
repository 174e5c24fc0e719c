"""Base scores: each task's eval-split margins at the untuned model (``eval1``), in every run.

Every view shows the untuned accuracy beside the space, and transfer is measured against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from taskspace_core.configs import METRICS, ProbeConfig
from taskspace_core.methods.registry import (
    Assembly,
    Method,
    Unit,
    UnitContext,
    UnitKind,
    register,
    register_kind,
    scoring_work,
)


def per_task(fn: Callable[[Any, Any, ProbeConfig], Any]) -> Callable[[UnitContext, list[Unit]], Iterator]:
    """A compute function from ``fn(loaded, task, pcfg)``, one unit at a time."""

    def compute(ctx: UnitContext, units: list[Unit]) -> Iterator[tuple[Unit, Any]]:
        for u in units:
            yield u, fn(ctx.loaded, ctx.tasks[u.task], ctx.pcfg)

    return compute


def _base_unit(loaded: Any, task: Any, pcfg: ProbeConfig) -> Any:
    from taskspace_core.probing import base_unit

    return base_unit(loaded, task, pcfg)


def _assemble(asm: Assembly) -> dict[str, Any]:
    base, names = asm.values["base"], asm.names
    missing = [t for t in names if t not in base]
    if missing:
        raise ValueError(f"base scores are missing for {', '.join(missing)}; run their base units first")
    return {
        "eval1": {m: np.array([base[t][m] for t in names], dtype=float) for m in METRICS},
        "n_eval_pairs": int(min(base[t]["n"] for t in names)) if names else 0,
    }


BASE = register_kind(
    UnitKind("base", "task", lambda p: p.unit_key("base"), per_task(_base_unit), seconds=2.5, work=scoring_work)
)
register(Method("base", "base scores (untuned model)", "", ("base",), _assemble, (), always=True))
