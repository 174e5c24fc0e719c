"""Plan and run a config unit by unit, through the store (resumable, O(N) per added task).

Units per model: ``base`` (untuned scores of task j), ``ftgd`` (mask + sparse update +
curve + gradient sketch of task i), ``transfer`` (tuned-i scored on j) or, for the
first-order estimate, ``egrad`` (eval-metric gradient of j). Each is one cache entry, so a
run killed anywhere recomputes only what is missing. When a model's units are all
there, they are assembled into one :class:`SpaceResult` for the app.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from precompute.config import ModelEntry, RunConfig
from taskspace_core.models import LoadedModel, cached_fingerprint, describe, load_model
from taskspace_core.results import ModelInfo, SpaceResult, TaskInfo, save_space, space_key
from taskspace_core.sources import load_many
from taskspace_core.store import Store, canonical, make_key
from taskspace_core.tasks import Task, TaskSet

UNIT_KINDS = ("base", "ftgd", "transfer", "egrad")
# Seconds per unit on a 2-core CPU for a SmolLM2-sized model at 48 eval pairs, until measured here.
DEFAULT_SECONDS = {"base": 2.5, "ftgd": 20.0, "transfer": 2.5, "egrad": 6.0}


@dataclass(frozen=True)
class Unit:
    kind: str
    key: str
    task: str
    other: str | None = None  # the evaluated task j of a transfer unit


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

    def counts(self) -> dict[str, dict[str, int]]:
        out = {k: {"total": 0, "cached": 0} for k in UNIT_KINDS}
        for mp in self.models:
            for u in mp.units:
                out[u.kind]["total"] += 1
                out[u.kind]["cached"] += u.key in mp.cached
        return {k: v for k, v in out.items() if v["total"]}

    def summary(self, store: Store) -> dict[str, Any]:
        counts = self.counts()
        total = sum(c["total"] for c in counts.values())
        cached = sum(c["cached"] for c in counts.values())
        secs = unit_seconds(store)
        est = sum(secs[u.kind] for mp in self.models for u in mp.todo)
        return {
            "config": self.config.name,
            "models": [mp.entry.spec.label for mp in self.models],
            "tasks": len(self.taskset),
            "units_total": total,
            "units_cached": cached,
            "units_todo": total - cached,
            "by_type": counts,
            "estimated_seconds": round(est, 1),
        }


def unit_seconds(store: Store) -> dict[str, float]:
    """Mean measured seconds per unit kind from earlier runs (defaults until measured)."""
    sums: dict[str, list[float]] = {k: [] for k in UNIT_KINDS}
    for rec in store.entries():
        if rec.get("kind") in sums and rec.get("seconds"):
            sums[rec["kind"]].append(float(rec["seconds"]))
    return {k: (sum(v) / len(v) if v else DEFAULT_SECONDS[k]) for k, v in sums.items()}


def _unit_keys(fp: str, entry: ModelEntry, tasks: TaskSet, cfg: RunConfig, pcfg: Any) -> list[Unit]:
    rev = entry.spec.revision
    units: list[Unit] = []
    need_transfer = "transfer" in cfg.methods
    for t in tasks:
        h = t.content_hash()
        # base scores always: cheap, and every view shows the untuned accuracy beside the space
        units.append(Unit("base", make_key("base", fp=fp, rev=rev, task=h, **pcfg.unit_key("base")), t.name))
        units.append(Unit("ftgd", make_key("ftgd", fp=fp, rev=rev, task=h, **pcfg.unit_key("ftgd")), t.name))
    if need_transfer and pcfg.transfer == "first_order":
        # a first-order column dots task j's eval gradient with every task's update: it depends on the set
        for t in tasks:
            key = make_key(
                "egrad",
                fp=fp,
                rev=rev,
                task=t.content_hash(),
                all=tasks.content_hash(),
                **pcfg.unit_key("eval_gradient"),
            )
            units.append(Unit("egrad", key, t.name))
    elif need_transfer:
        tkey = pcfg.unit_key("transfer")
        for ti in tasks:
            for tj in tasks:
                key = make_key("transfer", fp=fp, rev=rev, tuned=ti.content_hash(), task=tj.content_hash(), **tkey)
                units.append(Unit("transfer", key, ti.name, tj.name))
    return units


def build_plan(cfg: RunConfig, store: Store, loaded_cache: dict[int, LoadedModel] | None = None) -> Plan:
    """Units of every model with their cache state; loads a model only if its fingerprint is unknown."""
    taskset = load_many(cfg.tasks)
    pcfg = cfg.probe_config()
    config_hash = make_key("cfg", cfg=canonical({"m": cfg.methods, "p": pcfg.key()}))
    models = []
    for i, entry in enumerate(cfg.models):
        fp = cached_fingerprint(entry.spec)
        if fp is None:
            lm = load_model(entry.spec)
            if loaded_cache is not None:
                loaded_cache[i] = lm
            fp = lm.fingerprint
        units = _unit_keys(fp, entry, taskset, cfg, pcfg)
        cached = {u.key for u in units if store.has(u.key)}
        skey = space_key(fp, entry.spec.revision, taskset.content_hash(), config_hash)
        models.append(ModelPlan(entry, fp, units, cached, skey))
    return Plan(cfg, taskset, models)


class Progress:
    """Counts finished units per kind; feeds tqdm bars and a JSON progress file for the app."""

    def __init__(self, plan: Plan, store: Store, path: str | Path | None, show: bool = True) -> None:
        self.counts = {k: [v["cached"], v["total"]] for k, v in plan.counts().items()}
        self.secs = unit_seconds(store)
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
        return sum(self.secs[k] * n for k, n in self.remaining.items())

    def done(self, kind: str, seconds: float) -> None:
        self.counts[kind][0] += 1
        self.remaining[kind] -= 1
        n = self.counts[kind][0]
        self.secs[kind] = 0.7 * self.secs[kind] + 0.3 * seconds if n > 1 else seconds
        if kind in self.bars:
            self.bars[kind].update(1)
            self.bars[kind].set_postfix_str(f"ETA {self.eta():.0f}s")
        self.write("running")

    def write(self, state: str, force: bool = False) -> None:
        if self.path is None or (not force and time.time() - self._last < 0.5):
            return
        self._last = time.time()
        body = {
            "state": state,
            "done": sum(v[0] for v in self.counts.values()),
            "total": sum(v[1] for v in self.counts.values()),
            "by_type": self.counts,
            "eta_s": round(self.eta(), 1),
            "elapsed_s": round(time.time() - self.t0, 1),
            "message": self.message,
            "updated": time.time(),
        }
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(body))
        os.replace(tmp, self.path)

    def close(self, state: str) -> None:
        for b in self.bars.values():
            b.close()
        self.write(state, force=True)


def _task_info(t: Task) -> TaskInfo:
    ex = t.example
    return TaskInfo(t.name, t.category, t.field, t.description, t.tag_dict, ex.good, ex.bad, len(t))


def write_unit(store: Store, unit: Unit, value: Any, mp: ModelPlan, taskset: TaskSet, seconds: float) -> None:
    """Write one finished unit (the driver's job, whichever executor computed it)."""
    meta = {"model": mp.entry.spec.label, "fingerprint": mp.fingerprint, "tasks": taskset.name}
    store.put(unit.key, value, task=unit.task, other=unit.other, seconds=round(seconds, 3), **meta)
    mp.cached.add(unit.key)


def compute_units(
    mp: ModelPlan, plan: Plan, loaded: LoadedModel, cached_value: Callable[[str], Any]
) -> Iterator[tuple[Unit, Any, float]]:
    """Compute the missing units of one model, yielding ``(unit, value, seconds)`` as each finishes.

    Pure with respect to the cache: ``cached_value(key)`` reads what is already there (an
    FTGD result a transfer needs), and the caller writes what is yielded. The local runner
    writes as it goes; a remote executor ships the results to the driver, which writes them.
    """
    from taskspace_core import probing, threads
    from taskspace_core.ftgd import applied

    threads.apply_policy()  # CLI runs only: threads for the cores free now

    pcfg = plan.config.probe_config()
    tasks = {t.name: t for t in plan.taskset}
    todo = mp.todo
    fresh: dict[str, Any] = {}
    for kind, fn in (("base", probing.base_unit), ("ftgd", probing.ftgd_unit)):
        for u in todo:
            if u.kind == kind:
                t0 = time.perf_counter()
                value = fn(loaded, tasks[u.task], pcfg)
                fresh[u.key] = value
                yield u, value, time.perf_counter() - t0
    egrad = [u for u in todo if u.kind == "egrad"]
    if egrad:
        deltas = {}
        for name in tasks:
            key = _ftgd_key(mp, name)
            deltas[name] = fresh[key] if key in fresh else cached_value(key)
        for u in egrad:
            t0 = time.perf_counter()
            value = probing.eval_gradient_unit(loaded, tasks[u.task], pcfg, deltas)
            yield u, value, time.perf_counter() - t0
    rows: dict[str, list[Unit]] = {}
    for u in todo:
        if u.kind == "transfer":
            rows.setdefault(u.task, []).append(u)
    for tuned, units in rows.items():  # apply each task's update once, score every missing j
        key = _ftgd_key(mp, tuned)
        result = fresh[key] if key in fresh else cached_value(key)
        with applied(loaded, result):
            for u in units:
                t0 = time.perf_counter()
                value = probing.transfer_unit(loaded, result, tasks[u.other], pcfg)
                yield u, value, time.perf_counter() - t0


def run_model(
    mp: ModelPlan, plan: Plan, store: Store, progress: Progress, loaded: LoadedModel | None = None
) -> SpaceResult:
    """Compute the missing units of one model locally, writing each as it finishes; assemble the space."""
    if mp.todo and loaded is None:
        progress.message = f"loading {mp.entry.spec.label}"
        loaded = load_model(mp.entry.spec)
    progress.message = mp.entry.spec.label
    if mp.todo:
        for unit, value, seconds in compute_units(mp, plan, loaded, store.get):
            write_unit(store, unit, value, mp, plan.taskset, seconds)
            progress.done(unit.kind, seconds)
    missing = [u.key for u in mp.units if not store.has(u.key)]
    if missing:
        raise RuntimeError(f"{len(missing)} unit(s) of {mp.entry.spec.label} are missing after the run")
    return assemble_space(mp, plan, store, loaded)


def _ftgd_key(mp: ModelPlan, task: str) -> str:
    return next(u.key for u in mp.units if u.kind == "ftgd" and u.task == task)


def assemble_space(mp: ModelPlan, plan: Plan, store: Store, loaded: LoadedModel | None) -> SpaceResult:
    """Read a model's units from the store, assemble the matrices and store the space."""
    from taskspace_core import probing

    pcfg = plan.config.probe_config()
    names = plan.taskset.names
    base, ftgd, transfers, egrads = {}, {}, {}, {}
    for u in mp.units:
        value = store.get(u.key)
        if u.kind == "base":
            base[u.task] = value
        elif u.kind == "ftgd":
            ftgd[u.task] = value
        elif u.kind == "transfer":
            transfers[(u.task, u.other)] = value
        else:
            egrads[u.task] = value
    mats = probing.assemble(list(plan.taskset), base, ftgd, transfers, pcfg, first_order=egrads or None)
    n_params = describe(loaded)["n_parameters"] if loaded is not None else 0
    spec = mp.entry.spec
    info = ModelInfo(
        spec.label, spec.name_or_path, spec.revision, spec.step0, mp.fingerprint, mp.entry.size, mp.entry.step, n_params
    )
    eval1 = {m: mats["eval1"][m] for m in mats.get("eval1", {})}
    space = SpaceResult(
        model=info,
        taskset=plan.taskset.name,
        series=plan.config.series,
        tasks=tuple(_task_info(plan.taskset[n]) for n in names),
        config={"methods": list(plan.config.methods), **pcfg.key(), "run": plan.config.raw},
        metric=pcfg.metric,
        eval1=eval1,
        T=mats.get("T") if "transfer" in plan.config.methods and pcfg.transfer == "exact" else None,
        T_first_order=mats.get("T_first_order"),
        G=mats.get("G") if "gradient" in plan.config.methods else None,
        J=mats.get("J"),
        lift_per_tensor=mats.get("lift_per_tensor"),
        lift_uniform=mats.get("lift_uniform"),
        mask_distribution=mats.get("mask_distribution", {}),
        curves=mats.get("curves", {}),
        n_eval_pairs=pcfg.n_eval,
        created=time.time(),
    )
    save_space(store, mp.space_key, space)
    return space


def iter_spaces(plan: Plan, store: Store) -> Iterator[SpaceResult]:
    """Assembled spaces of a fully cached plan (for export)."""
    from taskspace_core.results import load_space

    for mp in plan.models:
        sp = load_space(store, mp.space_key)
        if sp is not None:
            yield sp
