"""Tuning-noise reliability (METHODS s6): each task also tuned on two disjoint halves of its tune split.

With ``probe.tuning_halves: true`` (exact transfer only), half h of every task gets its own
``ftgd_half{h}`` unit and its row of ``transfer_half{h}`` units (N + N^2 per half). The two
half-tuned task spaces, scored on the same eval pairs, are stored as
``SpaceResult.tuning_margins``; their split-half correlation (Spearman-Brown corrected) is the
noise ceiling that counts tuning noise as well as eval noise.
"""

from __future__ import annotations

from typing import Any

from taskspace_core.configs import ProbeConfig
from taskspace_core.methods.base import per_task
from taskspace_core.methods.registry import (
    Assembly,
    Method,
    UnitKind,
    register,
    register_kind,
    scoring_work,
    tuning_work,
)
from taskspace_core.methods.transfer_exact import transfer_compute

HALVES = (1, 2)  # as probing.TUNE_HALVES (not imported: it would import torch)


def _ftgd_half(half: int):  # noqa: ANN202 - a per_task function
    def unit(loaded: Any, task: Any, pcfg: ProbeConfig) -> Any:
        from taskspace_core.probing import ftgd_unit

        return ftgd_unit(loaded, task, pcfg, half=half)

    return unit


def _assemble(asm: Assembly) -> dict[str, Any]:
    from taskspace_core.space_uncertainty import pair_margins

    halves = tuple(pair_margins(asm.names, asm.values["base"], asm.values[f"transfer_half{h}"]) for h in HALVES)
    return {"tuning_margins": None if None in halves else halves}


for _h in HALVES:
    register_kind(
        UnitKind(
            f"ftgd_half{_h}",
            "task",
            lambda p, h=_h: {**p.unit_key("ftgd"), "tune_half": h},
            per_task(_ftgd_half(_h)),
            seconds=20.0,
            work=lambda p: tuning_work(p) / 2,  # half the tune split
        )
    )
    register_kind(
        UnitKind(
            f"transfer_half{_h}",
            "pair",
            lambda p, h=_h: {**p.unit_key("transfer"), "tune_half": h},
            transfer_compute(f"ftgd_half{_h}"),
            needs=(f"ftgd_half{_h}",),
            seconds=2.5,
            work=scoring_work,
        )
    )
register(
    Method(
        name="tuning_halves",
        label="tuning-noise reliability (two tunings on halves of the tune split)",
        config_name="transfer",
        kinds=("base", *(f"{k}{h}" for h in HALVES for k in ("ftgd_half", "transfer_half"))),
        assemble=_assemble,
        fields=("tuning_margins",),
        when=lambda p: p.tuning_halves and p.transfer == "exact",
    )
)
