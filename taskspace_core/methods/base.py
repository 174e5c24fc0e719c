"""Base scores: each task's eval-split margins at the untuned model (``eval1``), in every run.

Every view shows the untuned accuracy beside the space, and transfer is measured against it.
"""

from __future__ import annotations

import time
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
    stream_shares,
)


def per_task(fn: Callable[[Any, Any, ProbeConfig], Any]) -> Callable[[UnitContext, list[Unit]], Iterator]:
    """A compute function from ``fn(loaded, task, pcfg)``, one unit at a time."""

    def compute(ctx: UnitContext, units: list[Unit]) -> Iterator[tuple[Unit, Any]]:
        for u in units:
            yield u, fn(ctx.loaded, ctx.tasks[u.task], ctx.pcfg)

    return compute


def _base_units(ctx: UnitContext, units: list[Unit]) -> Iterator[tuple[Unit, Any, float]]:
    """Every missing task's eval pairs scored in one stream (full batches), one unit per task."""
    from taskspace_core.probing import base_units

    t0 = time.perf_counter()
    values = base_units(ctx.loaded, [ctx.tasks[u.task] for u in units], ctx.pcfg)
    yield from stream_shares(units, [v["n"] for v in values], time.perf_counter() - t0, values)


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
    UnitKind("base", "task", lambda p: p.unit_key("base"), _base_units, seconds=2.5, work=scoring_work)
)
register(Method("base", "base scores (untuned model)", "", ("base",), _assemble, (), always=True))
