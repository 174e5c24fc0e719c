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

from taskspace_core import methods, tasksets
from taskspace_core.records import SpaceRecord
from taskspace_core.store import Store, canonical, make_key

if TYPE_CHECKING:
    from taskspace_core.spaces import PairMargins
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


LEGACY_MATRICES = ("T", "T_first_order", "G", "J", "lift_per_tensor", "lift_uniform")


@dataclass(frozen=True, init=False)
class SpaceResult:
    """Task-by-task matrices of one model on one task set (rows/cols in ``tasks`` order).

    ``matrices`` holds every result field the run's methods declare (see
    :mod:`taskspace_core.methods`), e.g. ``T[i, j]``: change of task j's eval metric after
    FTGD on task i (METHODS s4); ``G``: gradient cosine; ``J``: mask Jaccard; lifts (s5);
    ``R``: representation similarity. ``space.T`` etc. read them (``None`` when not computed).
    """

    model: ModelInfo
    taskset: str
    series: str
    tasks: tuple[TaskInfo, ...]
    config: dict[str, Any]
    metric: str
    eval1: dict[str, np.ndarray]  # metric name -> [N] base-model values
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    mask_distribution: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> {layers, modules, counts}
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # task -> {step, accuracy, mean_margin}
    n_eval_pairs: int = 0
    created: float = 0.0
    # uncertainty (METHODS s6; None in spaces stored before it, and in first-order runs for the margins):
    pair_margins: PairMargins | None = None  # per-pair base and tuned margins of the eval pairs (exact transfer)
    tuning_margins: tuple[PairMargins, PairMargins] | None = None  # the two half tunings (probe.tuning_halves)
    uncertainty: dict[str, Any] | None = None  # intervals and reliabilities (taskspace_core.space_uncertainty)

    def __init__(
        self,
        model: ModelInfo,
        taskset: str,
        series: str,
        tasks: tuple[TaskInfo, ...],
        config: dict[str, Any],
        metric: str,
        eval1: dict[str, np.ndarray],
        matrices: dict[str, np.ndarray] | None = None,
        mask_distribution: dict[str, dict[str, Any]] | None = None,
        curves: dict[str, dict[str, list[float]]] | None = None,
        lm_loss_change: dict[str, float] | None = None,
        n_eval_pairs: int = 0,
        created: float = 0.0,
        pair_margins: PairMargins | None = None,
        tuning_margins: tuple[PairMargins, PairMargins] | None = None,
        uncertainty: dict[str, Any] | None = None,
        **legacy: np.ndarray | None,
    ) -> None:
        unknown = sorted(set(legacy) - set(LEGACY_MATRICES))
        if unknown:
            raise TypeError(f"SpaceResult got unknown field(s) {unknown}")
        mats = {k: v for k, v in {**(matrices or {}), **legacy}.items() if v is not None}
        values = dict(model=model, taskset=taskset, series=series, tasks=tuple(tasks), config=config, metric=metric,
                      eval1=eval1, matrices=mats, mask_distribution=mask_distribution or {}, curves=curves or {},
                      lm_loss_change=lm_loss_change or {}, n_eval_pairs=n_eval_pairs, created=created,
                      pair_margins=pair_margins, tuning_margins=tuning_margins, uncertainty=uncertainty)  # fmt: skip
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Spaces pickled before the registry held each matrix as its own attribute."""
        state = dict(state)
        mats = state.setdefault("matrices", {})
        for k in LEGACY_MATRICES:
            if state.get(k) is not None:
                mats[k] = state.pop(k)
            state.pop(k, None)
        self.__dict__.update(state)

    T = property(lambda self: self.matrices.get("T"))
    T_first_order = property(lambda self: self.matrices.get("T_first_order"))
    G = property(lambda self: self.matrices.get("G"))
    J = property(lambda self: self.matrices.get("J"))
    lift_per_tensor = property(lambda self: self.matrices.get("lift_per_tensor"))
    lift_uniform = property(lambda self: self.matrices.get("lift_uniform"))

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
    """Write a space and its :class:`SpaceRecord` (the one writer of that record)."""
    found = [m.config_name for m in methods.methods() if m.config_name and set(m.fields) & set(space.matrices)]
    record = SpaceRecord(
        model=space.model.label,
        fingerprint=space.model.fingerprint,
        revision=space.model.revision,
        size_label=space.model.size_label,
        step=space.model.step,
        series=space.series,
        tasks=space.taskset,
        n_tasks=len(space.tasks),
        methods=list(dict.fromkeys(found)),
        owners=tasksets.owners_of((space.config.get("run") or {}).get("tasks") or []),
    )
    store.put(key, space, **record.meta())


def list_spaces(store: Store) -> list[SpaceRecord]:
    """The record of every assembled space, newest first (the one reader of that record)."""
    return sorted((SpaceRecord.from_dict(r) for r in store.entries("space")), key=lambda r: -float(r.created or 0))


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
    """The symmetric task spaces a result offers, by statistic name (for statistics, maps, trees).

    Every registered view with a ``statistic`` name (``T_profile``, ``T_sym``, ``G``, ``J``,
    ``R``, ...) that the run computed, built from the default estimate.
    """
    out: dict[str, np.ndarray] = {}
    for v in methods.views():
        if v.statistic and v.present(space):
            M = v.make(space)
            if M is not None:
                out[v.statistic] = M
    return out
