"""Mask overlap (METHODS s5): Jaccard J of the FTGD masks and its lift over two chance levels.

An ``auto`` method: it costs nothing beyond the FTGD units, so it runs whenever they do.
It also carries the masks' layout over layers and modules and the tune curves.
"""

from __future__ import annotations

from typing import Any

from taskspace_core.methods import ftgd_units
from taskspace_core.methods.registry import Assembly, MatrixView, Method, register


def _assemble(asm: Assembly) -> dict[str, Any]:
    from taskspace_core.probing import _lifts, mask_jaccard

    results = ftgd_units.results(asm)
    if not results:
        return {}
    J = mask_jaccard(results)
    lift_pt, lift_u = _lifts(J, results, asm.pcfg.ftgd.mask_fraction)
    return {
        "J": J,
        "lift_per_tensor": lift_pt,
        "lift_uniform": lift_u,
        "mask_distribution": {t: r.mask_distribution for t, r in zip(asm.names, results, strict=True)},
        "curves": {t: r.curve for t, r in zip(asm.names, results, strict=True)},
    }


register(
    Method(
        name="mask_overlap",
        label="mask overlap",
        config_name="overlap",
        kinds=("ftgd",),
        assemble=_assemble,
        fields=("J", "lift_per_tensor", "lift_uniform"),
        auto=True,
        default=False,  # a config that lists no method gets it anyway, through the FTGD units
        views=(
            MatrixView("J", "mask Jaccard J", False, True, ("J",), statistic="J"),
            MatrixView("lift", "overlap lift (per-tensor chance)", False, True, ("lift_per_tensor",)),
            MatrixView("lift_uniform", "overlap lift (uniform chance)", False, True, ("lift_uniform",)),
        ),
    )
)
