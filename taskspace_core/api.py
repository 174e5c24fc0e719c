"""The Python API for notebooks: ``import taskspace_core as ts`` (see README, "Python API").

``ts.load_tasks`` / ``ts.load_model`` / ``ts.score_pairs`` / ``ts.run_probe`` and the
:class:`TaskSpace` it returns. ``run_probe`` plans and runs through the same runner and
the same cache (``$TASKSPACE_CACHE`` or ``./cache``) as ``python -m precompute run``, so a
notebook and the CLI share every computed unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from taskspace_core import methods
from taskspace_core.results import SpaceResult, symmetric_views
from taskspace_core.tasks import Task, TaskSet


def load_tasks(*sources: str, limit: int | None = None) -> TaskSet:
    """Tasks from source strings (``builtin[:p1,p2]``, ``blimp:<dir>``, ``file:<csv>``, ...), as the CLI names them."""
    from taskspace_core.sources import load_many

    return load_many(list(sources) or ["builtin"]).limited(limit)


def load_model(name: str = "smollm2-135m", revision: str | None = None, **spec: Any) -> Any:
    """A loaded causal LM (``step0=True`` for seeded random weights; ``device``, ``dtype`` as in configs)."""
    from taskspace_core.configs import ModelSpec
    from taskspace_core.models import load_model as _load

    return _load(ModelSpec(name, revision, **spec))


def score_pairs(model: Any, pairs: Task | Sequence[Any], reduction: str = "sum") -> Any:
    """Margins ``log p(good) - log p(bad)`` (and log-probs) of a task's pairs or a list of MinimalPair."""
    from taskspace_core.configs import ScoringConfig
    from taskspace_core.scoring import PairScorer

    items = pairs.pairs if isinstance(pairs, Task) else list(pairs)
    return PairScorer(model, ScoringConfig(reduction=reduction)).score_pairs(items)


class TaskSpace:
    """The task space of one model: its matrices by view and ``fit(level)`` against a hypothesis."""

    def __init__(self, result: SpaceResult) -> None:
        self.result = result

    @property
    def names(self) -> list[str]:
        return self.result.names

    @property
    def matrices(self) -> dict[str, np.ndarray]:
        """Every matrix a view offers, by view id (``T``, ``profile``, ``G``, ``J``, ``R``, ...)."""
        return {v.id: self.matrix(v.id) for v in methods.views() if v.present(self.result)}

    def matrix(self, view: str, estimate: str = "exact") -> np.ndarray:
        M = methods.view(view).make(self.result, estimate)
        if M is None:
            raise KeyError(f"this space has no '{view}' matrix; it has {', '.join(self.matrices)}")
        return np.asarray(M)

    def levels(self) -> list[str]:
        return self.result.levels()

    def fit(self, level: str = "category", n_permutations: int = 999, seed: int = 0) -> dict[str, dict[str, Any]]:
        """Fit statistics (Spearman, Mantel p, ARI, ...) of every symmetric view to the hypothesis ``level``."""
        from taskspace_core import spaces

        H = spaces.HypothesisSpace.from_labels(level, self.names, self.result.labels(level))
        return {
            view: spaces.fit_hypothesis(S, H, n_permutations=n_permutations, seed=seed).as_dict()
            for view, S in symmetric_views(self.result).items()
        }

    def __repr__(self) -> str:
        return f"TaskSpace({self.result.model.label}, {len(self.names)} tasks, {', '.join(self.matrices)})"


def run_probe(
    model: Any,
    tasks: TaskSet | str | Sequence[str],
    methods: Sequence[str] = ("transfer", "gradient"),
    probe: dict[str, Any] | None = None,
    ftgd: dict[str, Any] | None = None,
    scoring: dict[str, Any] | None = None,
    series: str = "notebook",
) -> TaskSpace:
    """Probe one model (a name, or a model from :func:`load_model`) on a task set; cached unit by unit."""
    from precompute.executors import run_local
    from precompute.runner import Progress, build_plan
    from taskspace_core.configs import parse_config
    from taskspace_core.results import load_space
    from taskspace_core.store import Store

    loaded = None if isinstance(model, str) else model
    entry = {"name": model} if loaded is None else {**loaded.spec.to_dict(), "name": loaded.spec.name_or_path}
    entry.pop("name_or_path", None)
    taskset = (
        load_tasks(tasks) if isinstance(tasks, str) else tasks if isinstance(tasks, TaskSet) else load_tasks(*tasks)
    )
    raw = {"name": series, "series": series, "models": [entry], "tasks": [taskset.name], "methods": list(methods),
           "probe": probe or {}, "ftgd": ftgd or {}, "scoring": scoring or {}}  # fmt: skip
    cfg = parse_config(raw, series)
    with Store() as store:
        cache = {0: loaded} if loaded is not None else {}
        plan = build_plan(cfg, store, cache, taskset=taskset)
        run_local(plan, store, Progress(plan, store, None, show=False), cache)
        space = load_space(store, plan.models[0].space_key)
    assert space is not None
    return TaskSpace(space)
