"""Gradient cosine G (METHODS s5): cosine of the tasks' mean gradient differentials, from FTGD sketches."""

from __future__ import annotations

from typing import Any

from taskspace_core.methods import ftgd_units
from taskspace_core.methods.registry import Assembly, MatrixView, Method, register


def _assemble(asm: Assembly) -> dict[str, Any]:
    from taskspace_core.ftgd import gradient_similarity

    results = ftgd_units.results(asm)
    return {"G": gradient_similarity(results) if results else None}


register(
    Method(
        name="gradient_cosine",
        label="gradient cosine",
        config_name="gradient",
        kinds=("ftgd",),
        assemble=_assemble,
        fields=("G",),
        views=(MatrixView("G", "gradient cosine G", True, True, ("G",), statistic="G"),),
    )
)
