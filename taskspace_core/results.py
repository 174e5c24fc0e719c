"""The assembled task space of one model: what the runner writes and the app reads.

Units (base scores, FTGD, transfers) are cached one by one; once all units of a
(model, task set, config) are done, the runner assembles them into one
:class:`SpaceResult` stored under kind ``space``. The app lists and reads only these.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from taskspace_core.store import Store, canonical, make_key

if TYPE_CHECKING:
    from taskspace_core.tasks import TaskSet


@dataclass(frozen=True)
class TaskInfo:
    """What the views show about a task (hover text, colour bands, hypothesis levels)."""

    name: str
    category: str
    field: str
    description: str
    tags: dict[str, str]
    example_good: str
    example_bad: str
    n_pairs: int

    def level(self, name: str) -> str:
        if name in ("category", "field"):
            return getattr(self, name)
        return self.tags.get(name, "")


@dataclass(frozen=True)
class ModelInfo:
    """A model of a series: ``size_label`` and ``step`` place it in size/checkpoint views."""

    label: str
    name_or_path: str
    revision: str | None
    step0: bool
    fingerprint: str
    size_label: str = ""
    step: int | None = None
    n_parameters: int = 0


@dataclass(frozen=True)
class SpaceResult:
    """Task-by-task matrices of one model on one task set (rows/cols in ``tasks`` order).

    ``T[i, j]``: change of task j's eval metric after FTGD on task i (METHODS s4).
    ``G``: gradient cosine; ``J``: mask Jaccard; lifts against both chance levels (s5).
    Matrices a run did not compute are ``None``.
    """

    model: ModelInfo
    taskset: str
    series: str
    tasks: tuple[TaskInfo, ...]
    config: dict[str, Any]
    metric: str
    eval1: dict[str, np.ndarray]  # metric name -> [N] base-model values
    T: np.ndarray | None = None
    T_first_order: np.ndarray | None = None
    G: np.ndarray | None = None
    J: np.ndarray | None = None
    lift_per_tensor: np.ndarray | None = None
    lift_uniform: np.ndarray | None = None
    mask_distribution: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> {layers, modules, counts}
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # task -> {step, accuracy, mean_margin}
    n_eval_pairs: int = 0
    created: float = 0.0

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def labels(self, level: str) -> list[str]:
        return [t.level(level) for t in self.tasks]

    def levels(self) -> list[str]:
        """Hypothesis levels every task has a label for (category, field, then tag columns)."""
        tags = sorted({k for t in self.tasks for k in t.tags})
        return [lv for lv in ("category", "field", *tags) if all(t.level(lv) for t in self.tasks)]


def shown_hash(taskset: TaskSet) -> str:
    """Hash of everything the views show of a task set: the set name and, per task, its pairs,
    name, category, field, description and tags. Two uploads of the same pairs with other
    tags or another set name get different spaces; their units (keyed by
    :meth:`Task.content_hash`) are still shared."""
    parts = [taskset.name] + [
        [t.content_hash(), t.name, t.category, t.field, t.description, sorted(t.tag_dict.items())] for t in taskset
    ]
    return hashlib.sha256(canonical(parts).encode()).hexdigest()[:20]


def space_key(
    fingerprint: str,
    revision: str | None,
    taskset_hash: str,
    config_hash: str,
    series: str = "",
    size_label: str = "",
    step: int | None = None,
) -> str:
    """Key of an assembled space; ``taskset_hash`` should be :func:`shown_hash`, and the
    series and the model's place in it are part of the key because the views show them."""
    shown = {"series": series, "size": size_label, "step": step} if (series or size_label or step is not None) else {}
    return make_key(
        "space", fingerprint=fingerprint, revision=revision, tasks=taskset_hash, config=config_hash, **shown
    )


def save_space(store: Store, key: str, space: SpaceResult) -> None:
    store.put(
        key,
        space,
        model=space.model.label,
        fingerprint=space.model.fingerprint,
        revision=space.model.revision,
        size_label=space.model.size_label,
        step=space.model.step,
        series=space.series,
        tasks=space.taskset,
        n_tasks=len(space.tasks),
        methods=[m for m, v in (("transfer", space.T), ("gradient", space.G)) if v is not None],
    )


def list_spaces(store: Store) -> list[dict]:
    """Metadata of every assembled space, newest first."""
    return sorted(store.entries("space"), key=lambda r: -float(r.get("created", 0)))


def load_space(store: Store, key: str) -> SpaceResult | None:
    value = store.get(key)
    return value if isinstance(value, SpaceResult) else None


def load_series(store: Store, series: str, taskset: str | None = None) -> list[SpaceResult]:
    """All spaces of a series (sizes x checkpoints), ordered by size label then step."""
    out = []
    for rec in list_spaces(store):
        if rec.get("series") == series and (taskset is None or rec.get("tasks") == taskset):
            sp = load_space(store, rec["key"])
            if sp is not None:
                out.append(sp)
    return sorted(out, key=lambda s: (s.model.size_label, s.model.step if s.model.step is not None else -1))


def symmetric_views(space: SpaceResult) -> dict[str, np.ndarray]:
    """The symmetric task spaces a result offers, by view name (for statistics, maps, trees).

    ``T_profile`` (default) and ``T_sym`` from the transfer matrix (METHODS s4), ``G``
    gradient cosine, ``J`` mask Jaccard (s5); only those the run computed.
    """
    from taskspace_core.spaces import symmetrise

    out: dict[str, np.ndarray] = {}
    T = space.T if space.T is not None else space.T_first_order
    if T is not None:
        out["T_profile"] = symmetrise(T, "profile")
        out["T_sym"] = symmetrise(T, "sym")
    if space.G is not None:
        out["G"] = space.G
    if space.J is not None:
        out["J"] = space.J
    return out
