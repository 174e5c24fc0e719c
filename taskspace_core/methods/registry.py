"""The method registry: unit kinds, similarity methods and the matrix views they offer.

A *unit kind* is one cacheable piece of work per task (or per task pair): its cache key
parts, its compute function and the kinds it reads. A *method* turns the units of its
kinds into result fields (matrices of a :class:`~taskspace_core.results.SpaceResult`)
and declares the views (pickers, heatmaps, statistics, export) those fields feed. The
runner, the export and the app only ever iterate over this registry.

Declarations import no torch: compute functions import what they need when called.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from taskspace_core.configs import ProbeConfig

SCOPES = ("task", "task_in_set", "pair")


@dataclass(frozen=True)
class Unit:
    """One planned unit: its kind, cache key, task and (for pair units) the evaluated task."""

    kind: str
    key: str
    task: str
    other: str | None = None


@dataclass
class UnitContext:
    """What a compute function gets: the model, the tasks by name, the config and the units it needs."""

    loaded: Any
    tasks: Mapping[str, Any]
    pcfg: ProbeConfig
    value_of: Callable[[str, str], Any]  # (kind, task name) -> that unit's value (fresh or cached)


# A compute function yields ``(unit, value)`` as each unit finishes (the runner times it), or
# ``(unit, value, seconds)`` where several units come out of one computation (see stream_shares).
Compute = Callable[[UnitContext, list[Unit]], Iterator[tuple[Unit, Any] | tuple[Unit, Any, float]]]


def stream_shares(
    units: Sequence[Unit], sizes: Sequence[int], seconds: float, values: Iterable[Any]
) -> Iterator[tuple[Unit, Any, float]]:
    """Units computed together in one stream of ``seconds``: ``(unit, value, seconds)`` per unit.

    Each unit gets the stream's time in proportion to its size (e.g. pairs scored), plus the time
    its own value takes to come out of ``values`` (which may be lazy), so measured seconds per
    unit and the runner's ETA stay per unit.
    """
    total = sum(sizes) or 1
    it = iter(values)
    for u, n in zip(units, sizes, strict=True):
        t0 = time.perf_counter()
        value = next(it)
        yield u, value, seconds * n / total + time.perf_counter() - t0


REFERENCE_EVAL = 48  # the reference config of ``UnitKind.seconds``: 48 eval pairs per task,
REFERENCE_TUNE = 32 + 10 * 8  # and FTGD on 32 mask pairs + 10 steps of 8 pairs


def scoring_work(p: ProbeConfig) -> float:
    """Units that score (or differentiate) a task's eval pairs: their time grows with ``n_eval``."""
    return p.n_eval / REFERENCE_EVAL


def tuning_work(p: ProbeConfig) -> float:
    """FTGD units: the mask gradient over ``mask_pairs`` plus ``steps`` batches."""
    return (p.ftgd.mask_pairs + p.ftgd.steps * p.ftgd.batch_size) / REFERENCE_TUNE


@dataclass(frozen=True)
class UnitKind:
    """A kind of unit. ``scope``: ``task`` (one per task), ``task_in_set`` (one per task, keyed by the
    whole task set too: its value depends on the other tasks) or ``pair`` (one per (tuned, evaluated))."""

    name: str
    scope: str
    key_parts: Callable[[ProbeConfig], dict[str, Any]]
    compute: Compute
    needs: tuple[str, ...] = ()
    seconds: float = 2.5  # first guess of seconds per unit (2-core CPU, SmolLM2, 48 pairs) until measured
    work: Callable[[ProbeConfig], float] = lambda p: 1.0  # a unit's size relative to the reference config

    def size(self, pcfg: ProbeConfig) -> float:
        """How much work one unit is under ``pcfg`` (1.0 at the reference config): the ETA scales with it."""
        return max(float(self.work(pcfg)), 1e-6)

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"unit kind {self.name}: scope must be one of {', '.join(SCOPES)}")


@dataclass
class Assembly:
    """A model's unit values by kind (``values[kind][task]``, pair kinds by ``(tuned, evaluated)``)."""

    tasks: list[Any]
    pcfg: ProbeConfig
    values: dict[str, dict[Any, Any]]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]


@dataclass(frozen=True)
class MatrixView:
    """A task-by-task matrix the views offer. It exists when any of ``sources`` (result fields) is there;
    ``build(space, estimate)`` makes it (default: the first source present)."""

    id: str
    label: str
    diverging: bool
    symmetric: bool
    sources: tuple[str, ...]
    build: Callable[[Any, str], np.ndarray | None] | None = None
    statistic: str = ""  # its name among the symmetric spaces an export fits to every hypothesis
    uses_estimate: bool = False  # fed by the estimate the user picks (see Method.estimate)

    def present(self, space: Any) -> bool:
        return any(space.matrices.get(s) is not None for s in self.sources)

    def make(self, space: Any, estimate: str = "") -> np.ndarray | None:
        if self.build is not None:
            return self.build(space, estimate)
        return next((space.matrices[s] for s in self.sources if space.matrices.get(s) is not None), None)


@dataclass(frozen=True)
class Method:
    """A similarity method. ``config_name`` is how a run config's ``methods:`` selects it (several
    methods may share one, told apart by ``when``); ``auto`` methods run whenever their unit kinds are
    planned anyway; ``always`` ones (the base scores) run in every run."""

    name: str
    label: str
    config_name: str
    kinds: tuple[str, ...]
    assemble: Callable[[Assembly], dict[str, Any]]
    fields: tuple[str, ...]
    views: tuple[MatrixView, ...] = ()
    export_names: Mapping[str, str] = field(default_factory=dict)  # field -> file stem (default: the field)
    when: Callable[[ProbeConfig], bool] = lambda pcfg: True
    family: str = ""  # methods of one family estimate the same thing (transfer: exact, first-order)
    estimate: str = ""  # this method's estimate within its family
    default: bool = True  # among the methods of a config that lists none
    auto: bool = False
    always: bool = False

    def export_name(self, field_name: str) -> str:
        return self.export_names.get(field_name, field_name)


_KINDS: dict[str, UnitKind] = {}
_METHODS: dict[str, Method] = {}


def _known_kinds(names: tuple[str, ...], what: str) -> None:
    missing = [n for n in names if n not in _KINDS]
    if missing:
        raise ValueError(f"{what} reads unknown unit kind(s) {missing}; register them first")


def register_kind(kind: UnitKind) -> UnitKind:
    """Add (or replace, by name) a unit kind; kinds it needs must be registered first."""
    _known_kinds(kind.needs, f"unit kind {kind.name}")
    _KINDS[kind.name] = kind
    return kind


def register(method: Method) -> Method:
    """Add (or replace, by name) a method; its unit kinds must be registered."""
    _known_kinds(method.kinds, f"method {method.name}")
    _METHODS[method.name] = method
    return method


def unregister(name: str) -> None:
    """Remove a method and the unit kinds no other method reads (for tests of a toy method)."""
    method = _METHODS.pop(name, None)
    if method is None:
        return
    used = {k for m in _METHODS.values() for k in m.kinds} | {n for k in _KINDS.values() for n in k.needs}
    for k in method.kinds:
        if k not in used:
            _KINDS.pop(k, None)


def kinds() -> list[UnitKind]:
    return list(_KINDS.values())


def kind(name: str) -> UnitKind:
    return _KINDS[name]


def methods() -> list[Method]:
    return list(_METHODS.values())


def config_names() -> tuple[str, ...]:
    """What a run config's ``methods:`` may list."""
    return tuple(dict.fromkeys(m.config_name for m in _METHODS.values() if m.config_name))


def default_config_names() -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.config_name for m in _METHODS.values() if m.config_name and m.default))


def _closure(names: set[str]) -> set[str]:
    out, todo = set(), list(names)
    while todo:
        n = todo.pop()
        if n not in out:
            out.add(n)
            todo.extend(_KINDS[n].needs)
    return out


def active(config_methods: tuple[str, ...] | list[str], pcfg: ProbeConfig) -> list[Method]:
    """The methods a run computes, in registry order: always ones, chosen ones, then auto ones."""
    chosen = [m for m in _METHODS.values() if m.always or (m.config_name in config_methods and m.when(pcfg))]
    planned = _closure({k for m in chosen for k in m.kinds})
    return [m for m in _METHODS.values() if m in chosen or (m.auto and set(m.kinds) <= planned)]


def planned_kinds(methods_on: list[Method]) -> list[UnitKind]:
    """Unit kinds the methods read (with what those need), in registry order."""
    names = _closure({k for m in methods_on for k in m.kinds})
    return [k for k in _KINDS.values() if k.name in names]


def views() -> list[MatrixView]:
    return [v for m in _METHODS.values() for v in m.views]


def view(view_id: str) -> MatrixView:
    for v in views():
        if v.id == view_id:
            return v
    raise KeyError(f"no matrix view '{view_id}'; known: {', '.join(v.id for v in views())}")


def result_fields() -> list[str]:
    return list(dict.fromkeys(f for m in _METHODS.values() for f in m.fields))


def export_name(field_name: str) -> str:
    """The file stem a result field is exported under."""
    for m in _METHODS.values():
        if field_name in m.fields:
            return m.export_name(field_name)
    return field_name


def estimates(space: Any, family: str) -> list[Method]:
    """Methods of ``family`` whose field the space holds (e.g. exact and first-order transfer)."""
    return [
        m for m in _METHODS.values() if m.family == family and any(space.matrices.get(f) is not None for f in m.fields)
    ]


def family_source(space: Any, family: str, estimate: str = "") -> tuple[np.ndarray | None, Method | None]:
    """The matrix of the chosen estimate of a family, else of the first one the space holds."""
    found = estimates(space, family)
    pick = next((m for m in found if m.estimate == estimate), found[0] if found else None)
    return (space.matrices.get(pick.fields[0]), pick) if pick else (None, None)
