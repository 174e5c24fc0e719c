"""A toy similarity method, registered from this test-local module alone (no other file names it).

Unit ``toy_len`` per task: the mean word count of its eval split's good sentences. The
space ``TOY[i, j] = -|len_i - len_j|``. ``CALLS`` counts computed units (a cache hit adds none).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from taskspace_core import methods
from taskspace_core.methods.base import per_task

CALLS: list[str] = []


def toy_unit(loaded: Any, task: Any, pcfg: Any) -> dict[str, Any]:
    CALLS.append(task.name)
    pairs = task.split(pcfg.n_tune, pcfg.n_eval)[1]
    return {"task": task.name, "length": float(np.mean([len(p.good.split()) for p in pairs]))}


def assemble(asm: methods.Assembly) -> dict[str, Any]:
    lengths = np.array([asm.values["toy_len"][t]["length"] for t in asm.names])
    return {"TOY": -np.abs(lengths[:, None] - lengths[None, :])}


def register() -> None:
    methods.register_kind(
        methods.UnitKind("toy_len", "task", lambda p: {**p.split_key(), "toy": 1}, per_task(toy_unit), seconds=0.1)
    )
    methods.register(
        methods.Method(
            name="toy",
            label="toy length similarity",
            config_name="toy",
            kinds=("base", "toy_len"),
            assemble=assemble,
            fields=("TOY",),
            export_names={"TOY": "toy_lengths"},
            default=False,
            views=(
                methods.MatrixView("TOY", "toy: minus the length difference", True, True, ("TOY",), statistic="TOY"),
            ),
        )
    )


def unregister() -> None:
    methods.unregister("toy")
