"""Plan and run a config unit by unit, through the store (resumable, O(N) per added task).

The unit kinds and methods come from the registry (:mod:`taskspace_core.methods`): e.g.
``base`` (untuned scores of task j), ``ftgd`` (mask + sparse update + curve + gradient
sketch of task i), ``transfer`` (tuned-i scored on j), ``egrad`` (first-order column j),
``rep`` (hidden-state differences of task j). Each unit is one cache entry, so a run
killed anywhere recomputes only what is missing. When a model's units are all there, the
active methods assemble them into one :class:`SpaceResult` for the app. Nothing here
imports torch until a unit has to be computed, so a cache-hit run never does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from taskspace_core import methods as registry
from taskspace_core.configs import ModelEntry, ProbeConfig, RunConfig
from taskspace_core.limits import check_plan
from taskspace_core.memory import release_memory
from taskspace_core.methods import Assembly, Unit, UnitContext
from taskspace_core.model_files import cached_fingerprint
from taskspace_core.records import PlanSummary, ProgressRecord
from taskspace_core.results import ModelInfo, SpaceResult, TaskInfo, save_space, shown_hash, space_key
from taskspace_core.sources import load_many
from taskspace_core.store import MissingEntry, Store, canonical, make_key
from taskspace_core.tasks import Task, TaskSet

UNKNOWN_FINGERPRINT = "not-fingerprinted-yet"  # a plan made without loading weights

if TYPE_CHECKING:
    from taskspace_core.models import LoadedModel

__all__ = ["ModelPlan", "Plan", "Progress", "Unit", "assemble_space", "build_plan", "compute_units", "run_model"]


@dataclass
class ModelPlan:
    entry: ModelEntry
    fingerprint: str
    units: list[Unit]
    cached: set[str] = field(default_factory=set)
    space_key: str = ""

    @property
    def todo(self) -> list[Unit]:
        return [u for u in self.units if u.key not in self.cached]


@dataclass
class Plan:
    config: RunConfig
    taskset: TaskSet
    models: list[ModelPlan]

    @property
    def pcfg(self) -> ProbeConfig:
        return self.config.probe_config()

    def counts(self) -> dict[str, dict[str, int]]:
        out = {k.name: {"total": 0, "cached": 0} for k in registry.kinds()}
        for mp in self.models:
            for u in mp.units:
                out[u.kind]["total"] += 1
                out[u.kind]["cached"] += u.key in mp.cached
        return {k: v for k, v in out.items() if v["total"]}

    def summary(self, store: Store) -> PlanSummary:
        counts = self.counts()
        total = sum(c["total"] for c in counts.values())
        cached = sum(c["cached"] for c in counts.values())
        secs, pcfg = unit_seconds(store, {mp.fingerprint for mp in self.models}), self.pcfg
        est = sum(secs[u.kind] * registry.kind(u.kind).size(pcfg) for mp in self.models for u in mp.todo)
        return PlanSummary(
            config=self.config.name,
            models=[mp.entry.spec.label for mp in self.models],
            tasks=len(self.taskset),
            units_total=total,
            units_cached=cached,
            units_todo=total - cached,
            by_type=counts,
            estimated_seconds=round(est, 1),
            unfingerprinted=[mp.entry.spec.label for mp in self.models if mp.fingerprint == UNKNOWN_FINGERPRINT],
        )


def unit_seconds(store: Store, fingerprints: Collection[str] | None = None) -> dict[str, float]:
    """Mean measured seconds per unit kind at the reference size (``UnitKind.size``) from earlier runs
    (the registry's guesses until measured): a unit of twice the eval pairs is expected to take twice as long.

    With ``fingerprints``, only units of those models count: a tiny model's 0.5 s units must not
    price SmolLM2's (the registry's SmolLM2-sized guesses stand in until the model has its own)."""
    sums: dict[str, list[float]] = {k.name: [] for k in registry.kinds()}
    for rec in store.entries():
        if fingerprints is not None and rec.get("fingerprint") not in fingerprints:
            continue
        if rec.get("kind") in sums and rec.get("seconds"):
            sums[rec["kind"]].append(float(rec["seconds"]) / float(rec.get("work") or 1.0))
    return {k: (sum(v) / len(v) if v else registry.kind(k).seconds) for k, v in sums.items()}


def unit_key(kind: str, fp: str, rev: str | None, task: str, pcfg: ProbeConfig, **scope: str) -> str:
    """Store key of one unit (``task``: the task's content hash; ``scope``: ``tuned`` for a pair unit,
    ``all`` for a task-in-set unit): the one formula for the runner and for readers of its units."""
    return make_key(kind, fp=fp, rev=rev, task=task, **scope, **registry.kind(kind).key_parts(pcfg))


def _unit_keys(fp: str, entry: ModelEntry, tasks: TaskSet, cfg: RunConfig, pcfg: ProbeConfig) -> list[Unit]:
    """Every unit of one model: the unit kinds of the active methods, keyed as each kind declares."""
    rev = entry.spec.revision
    units: list[Unit] = []
    for kind in registry.planned_kinds(registry.active(cfg.methods, pcfg)):
        if kind.scope == "pair":
            for ti in tasks:
                for tj in tasks:
                    key = unit_key(kind.name, fp, rev, tj.content_hash(), pcfg, tuned=ti.content_hash())
                    units.append(Unit(kind.name, key, ti.name, tj.name))
            continue
        extra = {"all": tasks.content_hash()} if kind.scope == "task_in_set" else {}
        for t in tasks:
            units.append(Unit(kind.name, unit_key(kind.name, fp, rev, t.content_hash(), pcfg, **extra), t.name))
    return units


def build_plan(
    cfg: RunConfig,
    store: Store,
    loaded_cache: dict[int, LoadedModel] | None = None,
    taskset: TaskSet | None = None,
    load_weights: bool = True,
) -> Plan:
    """Units of every model with their cache state; loads a model only if its fingerprint is unknown.

    ``loaded_cache`` may already hold loaded models by index (their fingerprints are used); of
    the models this loads to fingerprint, it keeps only the last one there (one model resident
    at a time; :func:`~precompute.executors.run_local` runs it first);
    ``taskset`` replaces the config's task sources (the Python API passes tasks it holds);
    ``load_weights=False`` (the app's "Show the plan") never loads one: a model whose
    fingerprint is not known yet gets a placeholder and counts none of its units as cached.
    """
    taskset = taskset if taskset is not None else load_many(cfg.tasks)
    check_plan(cfg, taskset.tasks)  # resource limits (taskspace_core.limits): before any key or model load
    pcfg = cfg.probe_config()  # built and validated once, when the config was parsed
    config_hash = make_key("cfg", cfg=canonical({"m": cfg.methods, "p": pcfg.key()}))
    models = []
    held: int | None = None  # the one model loaded here that stays in loaded_cache for the run
    for i, entry in enumerate(cfg.models):
        given = (loaded_cache or {}).get(i)
        fp = given.fingerprint if given is not None else cached_fingerprint(entry.spec)
        if fp is None and not load_weights:
            fp = UNKNOWN_FINGERPRINT
        if fp is None:
            from taskspace_core.models import load_model

            if loaded_cache is not None and held is not None:  # one model resident at a time
                del loaded_cache[held]
                release_memory()
            lm = load_model(entry.spec)
            fp = lm.fingerprint
            if loaded_cache is not None:
                loaded_cache[i], held = lm, i
            del lm  # else this name would keep it alive while the next model loads
        units = _unit_keys(fp, entry, taskset, cfg, pcfg)
        cached = {u.key for u in units if fp != UNKNOWN_FINGERPRINT and store.has(u.key)}
        skey = space_key(fp, entry.spec.revision, shown_hash(taskset), config_hash, cfg.series, entry.size, entry.step)
        models.append(ModelPlan(entry, fp, units, cached, skey))
    return Plan(cfg, taskset, models)


class Progress:
    """Counts finished units per kind; feeds tqdm bars and a JSON progress file for the app."""

    def __init__(self, plan: Plan, store: Store, path: str | Path | None, show: bool = True) -> None:
        self.counts = {k: [v["cached"], v["total"]] for k, v in plan.counts().items()}
        self.secs = unit_seconds(store, {mp.fingerprint for mp in plan.models})
        self.size = {k.name: k.size(plan.pcfg) for k in registry.kinds()}
        self.remaining = {k: v[1] - v[0] for k, v in self.counts.items()}
        self.path = Path(path) if path else None
        self.t0 = time.time()
        self.bars = {}
        if show:
            for pos, (k, (done, total)) in enumerate(self.counts.items()):
                self.bars[k] = tqdm(total=total, initial=done, desc=f"{k:>8}", unit="unit", position=pos)
        self.message = ""
        self._last = 0.0
        self.write("running", force=True)

    def eta(self) -> float:
        return sum(self.secs[k] * self.size[k] * n for k, n in self.remaining.items())

    def done(self, kind: str, seconds: float) -> None:
        self.counts[kind][0] += 1
        self.remaining[kind] -= 1
        n = self.counts[kind][0]
        per = seconds / self.size[kind]
        self.secs[kind] = 0.7 * self.secs[kind] + 0.3 * per if n > 1 else per
        if kind in self.bars:
            self.bars[kind].update(1)
            self.bars[kind].set_postfix_str(f"ETA {self.eta():.0f}s")
        self.write("running")

    def write(self, state: str, force: bool = False) -> None:
        if self.path is None or (not force and time.time() - self._last < 0.5):
            return
        self._last = time.time()
        ProgressRecord(
            state=state,
            done=sum(v[0] for v in self.counts.values()),
            total=sum(v[1] for v in self.counts.values()),
            by_type=self.counts,
            eta_s=round(self.eta(), 1),
            elapsed_s=round(time.time() - self.t0, 1),
            message=self.message,
            updated=time.time(),
        ).write(self.path)

    def close(self, state: str) -> None:
        for b in self.bars.values():
            b.close()
        self.write(state, force=True)


def _task_info(t: Task) -> TaskInfo:
    ex = t.example
    return TaskInfo(t.name, t.category, t.field, t.description, t.tag_dict, ex.good, ex.bad, len(t))


def write_unit(store: Store, unit: Unit, value: Any, mp: ModelPlan, plan: Plan, seconds: float) -> None:
    """Write one finished unit (the driver's job, whichever executor computed it), with its size for later ETAs."""
    work = round(registry.kind(unit.kind).size(plan.pcfg), 4)
    meta = {"model": mp.entry.spec.label, "fingerprint": mp.fingerprint, "tasks": plan.taskset.name, "work": work}
    store.put(unit.key, value, task=unit.task, other=unit.other, seconds=round(seconds, 3), **meta)
    mp.cached.add(unit.key)


def compute_units(
    mp: ModelPlan, plan: Plan, loaded: LoadedModel, cached_value: Callable[[str], Any]
) -> Iterator[tuple[Unit, Any, float]]:
    """Compute the missing units of one model, yielding ``(unit, value, seconds)`` as each finishes.

    Pure with respect to the cache: ``cached_value(key)`` reads what is already there (an
    FTGD result a transfer needs), and the caller writes what is yielded. The local runner
    writes as it goes; a remote executor ships the results to the driver, which writes them.
    Kinds run in registry order, so a kind's needs are computed before it.
    """
    from taskspace_core import threads

    threads.apply_policy()  # CLI runs only: threads for the cores free now
    tasks = {t.name: t for t in plan.taskset}
    keys = {(u.kind, u.task): u.key for u in mp.units if u.other is None}
    needed = {n for k in registry.kinds() for n in k.needs}
    fresh: dict[str, Any] = {}

    def value_of(kind: str, task: str) -> Any:
        key = keys[(kind, task)]
        return fresh[key] if key in fresh else cached_value(key)

    ctx = UnitContext(loaded, tasks, plan.pcfg, value_of)
    for kind in registry.kinds():
        todo = [u for u in mp.todo if u.kind == kind.name]
        if not todo:
            continue
        t0 = time.perf_counter()
        for unit, value, *own in kind.compute(ctx, todo):
            seconds = own[0] if own else time.perf_counter() - t0  # a stream of units times its own
            if kind.name in needed:
                fresh[unit.key] = value
            yield unit, value, seconds
            release_memory(collect=False)  # e.g. an FTGD unit's full gradients: their pages go back (ms)
            threads.refresh_policy()  # the load may have changed since the last unit
            t0 = time.perf_counter()
        release_memory()


def run_model(
    mp: ModelPlan, plan: Plan, store: Store, progress: Progress, loaded: LoadedModel | None = None
) -> SpaceResult:
    """Compute the missing units of one model locally, writing each as it finishes; assemble the space.

    A cached unit found damaged when read is removed by the store; it is computed again here.
    """
    for _ in range(len(mp.units) + 1):  # each retry recomputes at least one healed-away unit
        if mp.todo and loaded is None:
            from taskspace_core.models import load_model

            progress.message = f"loading {mp.entry.spec.label}"
            loaded = load_model(mp.entry.spec)
        progress.message = mp.entry.spec.label
        try:
            for unit, value, seconds in compute_units(mp, plan, loaded, store.require) if mp.todo else ():
                write_unit(store, unit, value, mp, plan, seconds)
                progress.done(unit.kind, seconds)
            missing = [u.key for u in mp.units if not store.has(u.key)]
            if missing:
                raise RuntimeError(f"{len(missing)} unit(s) of {mp.entry.spec.label} are missing after the run")
            return assemble_space(mp, plan, store, loaded)
        except MissingEntry as e:
            mp.cached.discard(e.key)
            kind = next(u.kind for u in mp.units if u.key == e.key)
            progress.counts[kind][0] -= 1
            progress.remaining[kind] += 1
    raise RuntimeError(f"units of {mp.entry.spec.label} keep disappearing from the cache")


def assemble_space(mp: ModelPlan, plan: Plan, store: Store, loaded: LoadedModel | None) -> SpaceResult:
    """Read a model's units from the store, let each active method assemble its fields, store the space."""
    pcfg = plan.pcfg
    values: dict[str, dict[Any, Any]] = {k.name: {} for k in registry.kinds()}
    for u in mp.units:
        values[u.kind][(u.task, u.other) if u.other is not None else u.task] = store.require(u.key)
    asm = Assembly(list(plan.taskset), pcfg, values)
    extras = {f.name for f in fields(SpaceResult)} - {"matrices"}
    out: dict[str, Any] = {}
    matrices: dict[str, Any] = {}
    for method in registry.active(plan.config.methods, pcfg):
        for name, value in method.assemble(asm).items():
            (out if name in extras else matrices)[name] = value
    out["uncertainty"] = _uncertainty(asm, out)
    n_params = 0
    if loaded is not None:
        from taskspace_core.models import describe

        n_params = describe(loaded)["n_parameters"]
    spec = mp.entry.spec
    info = ModelInfo(
        spec.label, spec.name_or_path, spec.revision, spec.step0, mp.fingerprint, mp.entry.size, mp.entry.step, n_params
    )
    space = SpaceResult(
        model=info,
        taskset=plan.taskset.name,
        series=plan.config.series,
        tasks=tuple(_task_info(plan.taskset[n]) for n in plan.taskset.names),
        config={"methods": list(plan.config.methods), **pcfg.key(), "run": plan.config.raw},
        metric=pcfg.metric,
        matrices={k: v for k, v in matrices.items() if v is not None},
        **{**out, "n_eval_pairs": pcfg.n_eval},
        created=time.time(),
    )
    save_space(store, mp.space_key, space)
    return space


def _uncertainty(asm: Assembly, fields_out: dict[str, Any]) -> dict[str, Any] | None:
    """Intervals and reliabilities of the space from its per-pair margins (no model time; METHODS s6)."""
    from taskspace_core.space_uncertainty import compute_uncertainty

    base = asm.values.get("base", {})
    margins = [base[t].get("margins") for t in asm.names]
    return compute_uncertainty(
        None if any(m is None for m in margins) else margins,
        fields_out.get("pair_margins"),
        asm.pcfg.metric,
        fields_out.get("tuning_margins"),
    )


def iter_spaces(plan: Plan, store: Store) -> Iterator[SpaceResult]:
    """Assembled spaces of a fully cached plan (for export)."""
    from taskspace_core.results import load_space

    for mp in plan.models:
        sp = load_space(store, mp.space_key)
        if sp is not None:
            yield sp
