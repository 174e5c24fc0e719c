"""taskspace_core: minimal-pair tasks, models, scoring, FTGD, probing and task-space statistics.

No Streamlit import anywhere in this package (see ARCHITECTURE.md). The notebook API is
lazy, so ``import taskspace_core as ts`` imports no torch until a model is loaded::

    tasks = ts.load_tasks("builtin:anaphor_number,sva_verb_changes")
    model = ts.load_model("smollm2-135m")
    space = ts.run_probe(model, tasks)          # a TaskSpace: .names, .matrices, .fit("category")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["TaskSpace", "load_model", "load_tasks", "run_probe", "score_pairs"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from taskspace_core import api

        return getattr(api, name)
    raise AttributeError(f"module 'taskspace_core' has no attribute '{name}'")
