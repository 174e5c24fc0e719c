"""The FTGD unit of a task (METHODS s3): mask, sparse update, tune curve and gradient sketch.

Read by exact and first-order transfer, gradient cosine and mask overlap.
"""

from __future__ import annotations

from typing import Any

from taskspace_core.configs import ProbeConfig
from taskspace_core.methods.base import per_task
from taskspace_core.methods.registry import Assembly, UnitKind, register_kind, tuning_work


def _ftgd_unit(loaded: Any, task: Any, pcfg: ProbeConfig) -> Any:
    from taskspace_core.probing import ftgd_unit

    return ftgd_unit(loaded, task, pcfg)


def results(asm: Assembly) -> list[Any] | None:
    """The FTGD results in task order, or None when a task has none."""
    ftgd = asm.values.get("ftgd", {})
    if not asm.names or not all(t in ftgd for t in asm.names):
        return None
    return [ftgd[t] for t in asm.names]


FTGD = register_kind(
    UnitKind("ftgd", "task", lambda p: p.unit_key("ftgd"), per_task(_ftgd_unit), seconds=20.0, work=tuning_work)
)
