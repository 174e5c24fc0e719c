"""Transfer, exact (METHODS s4): ``T[i, j]`` = change of task j's eval metric after FTGD on task i.

One ``transfer`` unit per (tuned i, evaluated j). Views: T itself and its two symmetric
forms (sym-T and profile similarity), fed by whichever transfer estimate the user picks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from taskspace_core.methods.registry import (
    Assembly,
    Compute,
    MatrixView,
    Method,
    Unit,
    UnitContext,
    UnitKind,
    family_source,
    register,
    register_kind,
    scoring_work,
    stream_shares,
)

FIELDS = ("T", "T_first_order")  # every estimate of the transfer family feeds the views below


def transfer_compute(ftgd_kind: str) -> Compute:
    """Compute function of a transfer kind over the updates of ``ftgd_kind`` (also the tuning halves')."""

    def compute(ctx: UnitContext, units: list[Unit]) -> Iterator[tuple[Unit, Any, float]]:
        """Per tuned task: its update applied once, every missing evaluated task scored in one stream,
        then one unit per evaluated task (yielded only after the stream, so a crash writes none)."""
        from taskspace_core.probing import transfer_stream, transfer_unit

        rows: dict[str, list[Unit]] = {}
        for u in units:
            rows.setdefault(u.task, []).append(u)
        for tuned, row in rows.items():
            result = ctx.value_of(ftgd_kind, tuned)
            evaluated = [ctx.tasks[u.other] for u in row]
            t0 = time.perf_counter()
            margins = transfer_stream(ctx.loaded, result, evaluated, ctx.pcfg)
            values = (
                transfer_unit(ctx.loaded, result, t, ctx.pcfg, margins=m)
                for t, m in zip(evaluated, margins, strict=True)
            )
            yield from stream_shares(row, [len(m) for m in margins], time.perf_counter() - t0, values)

    return compute


def _assemble(asm: Assembly) -> dict[str, Any]:
    from taskspace_core.probing import assemble
    from taskspace_core.space_uncertainty import pair_margins

    T = assemble(asm.tasks, asm.values["base"], {}, asm.values["transfer"], asm.pcfg)["T"]
    return {"T": T, "pair_margins": pair_margins(asm.names, asm.values["base"], asm.values["transfer"])}


def _symmetric(how: str):
    def build(space: Any, estimate: str) -> np.ndarray | None:
        from taskspace_core.spaces import symmetrise

        T, _ = family_source(space, "transfer", estimate)
        return None if T is None else symmetrise(T, how)  # type: ignore[arg-type]

    return build


def _raw(space: Any, estimate: str) -> np.ndarray | None:
    return family_source(space, "transfer", estimate)[0]


TRANSFER = register_kind(
    UnitKind(
        "transfer",
        "pair",
        lambda p: p.unit_key("transfer"),
        transfer_compute("ftgd"),
        needs=("ftgd",),
        seconds=2.5,
        work=scoring_work,
    )
)
register(
    Method(
        name="transfer_exact",
        label="transfer (exact)",
        config_name="transfer",
        kinds=("base", "ftgd", "transfer"),
        assemble=_assemble,
        fields=("T",),
        when=lambda p: p.transfer == "exact",
        family="transfer",
        estimate="exact",
        views=(
            MatrixView(
                "T",
                "transfer T (row = tuned task, column = evaluated task)",
                True,
                False,
                FIELDS,
                _raw,
                uses_estimate=True,
            ),
            MatrixView(
                "sym",
                "sym-T: (T + Tᵀ)/2 after dividing rows by self-transfer",
                True,
                True,
                FIELDS,
                _symmetric("sym"),
                statistic="T_sym",
                uses_estimate=True,
            ),
            MatrixView(
                "profile",
                "profile similarity: correlation of rows of T (self-transfers left out from 4 tasks)",
                True,
                True,
                FIELDS,
                _symmetric("profile"),
                statistic="T_profile",
                uses_estimate=True,
            ),
        ),  # fmt: skip
    )
)
