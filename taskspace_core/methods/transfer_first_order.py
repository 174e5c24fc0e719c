"""Transfer, first-order estimate (METHODS s4b): ``T_fo[i, j] = delta_i . grad m_j``.

One ``egrad`` unit per evaluated task j (its eval-margin gradient dotted with every task's
update, so it is keyed by the whole task set). Feeds the transfer views as the
"first-order" estimate.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


def _compute(ctx: UnitContext, units: list[Unit]) -> Iterator[tuple[Unit, Any]]:
    from taskspace_core.probing import DeltaStack, eval_gradient_unit

    deltas = DeltaStack({name: ctx.value_of("ftgd", name) for name in ctx.tasks})  # once for all N gradients
    for u in units:
        yield u, eval_gradient_unit(ctx.loaded, ctx.tasks[u.task], ctx.pcfg, deltas)


def _assemble(asm: Assembly) -> dict[str, Any]:
    from taskspace_core.probing import assemble

    egrad = asm.values["egrad"]
    return {
        "T_first_order": assemble(asm.tasks, asm.values["base"], {}, {}, asm.pcfg, first_order=egrad)["T_first_order"]
    }


EGRAD = register_kind(
    UnitKind(
        "egrad",
        "task_in_set",
        lambda p: p.unit_key("eval_gradient"),
        _compute,
        needs=("ftgd",),
        seconds=6.0,
        work=scoring_work,
    )
)
register(
    Method(
        name="transfer_first_order",
        label="transfer (first-order estimate)",
        config_name="transfer",
        kinds=("base", "ftgd", "egrad"),
        assemble=_assemble,
        fields=("T_first_order",),
        when=lambda p: p.transfer == "first_order",
        family="transfer",
        estimate="first_order",
    )
)
