"""Executors: where the missing units of a plan are computed.

``local`` (the default) runs the models one after another in this process. ``ray``
schedules one Ray task per model spec (``num_gpus=1`` where the cluster has GPUs, else one
CPU), and each task streams ``(unit, value, seconds)`` back as it finishes a unit. The
driver alone writes results, through the same :class:`~taskspace_core.store.Store`:
workers run :func:`precompute.runner.compute_units` with a ``cached_value`` that answers
from the values the driver shipped them, and never open the results cache. A failed or
preempted worker is retried by Ray (``max_retries`` / ``retry_exceptions``); a retried
worker recomputes and replays its units, and the driver skips any unit already in the
store, so no unit is written twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from precompute.runner import (
    ModelPlan,
    Plan,
    Progress,
    Unit,
    assemble_space,
    compute_units,
    run_model,
    write_unit,
)
from taskspace_core import methods as registry
from taskspace_core.configs import ModelError
from taskspace_core.memory import release_memory
from taskspace_core.results import SpaceResult, load_space, save_space
from taskspace_core.store import Store

if TYPE_CHECKING:
    from taskspace_core.models import LoadedModel

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
MAX_RETRIES = 3  # per model task: a preempted node or a crashed worker costs a rerun of that model
_WAIT_S = 1.0  # driver poll interval, so Ctrl-C / SIGTERM is noticed while workers run


class ExecutorError(ValueError):
    """An executor cannot start (missing package, no GPU where one is required)."""


def needs_work(plan: Plan, store: Store) -> list[int]:
    """Indices of the plan's models with missing units or no assembled space."""
    return [i for i, mp in enumerate(plan.models) if mp.todo or load_space(store, mp.space_key) is None]


def run_local(
    plan: Plan, store: Store, progress: Progress, loaded: dict[int, LoadedModel] | None = None
) -> list[SpaceResult]:
    """Run every model that needs work in this process, one after another (spaces in plan order).

    A model already loaded (for planning) runs first and is freed before the next one loads, so
    one model is resident at a time.
    """
    loaded = loaded if loaded is not None else {}
    todo = needs_work(plan, store)
    spaces = {}
    for i in sorted(todo, key=lambda i: i not in loaded):
        spaces[i] = run_model(plan.models[i], plan, store, progress, loaded.pop(i, None))
        release_memory()  # the model's last reference went with run_model's frame
    return [spaces[i] for i in todo]


# ----------------------------------------------------------------------------- ray


def import_ray() -> Any:
    """``ray``, or an error that says how to install it (it is optional at runtime)."""
    try:
        import ray
    except ImportError as e:
        raise ExecutorError(
            "--executor ray needs the 'ray' package, which is not installed: pip install ray "
            "(it is in requirements-dev.txt); or use --executor local"
        ) from e
    return ray


def retry_exceptions() -> list[type[BaseException]]:
    """Application errors after which Ray retries a model task.

    Transient network trouble (hub downloads) and a GPU shared with another job running
    out of memory. Bad configs and bad data fail at once: a retry would fail the same way.
    """
    import torch

    return [ConnectionError, TimeoutError, torch.OutOfMemoryError]


def worker_device(config_device: str, cluster_gpus: float) -> tuple[str, int]:
    """(device inside the worker, GPUs to ask Ray for) for a config's device and the cluster's GPUs.

    Ray hides every GPU but the task's own (CUDA_VISIBLE_DEVICES), so a worker always
    sees its GPU as ``cuda``: a ``cuda:N`` of the config only makes sense locally.
    """
    if config_device == "cpu":
        return "cpu", 0
    if cluster_gpus >= 1:
        if config_device.startswith("cuda:"):
            log.warning("under Ray each model gets one GPU of its own; ignoring '%s'", config_device)
        return "cuda", 1
    if config_device.startswith("cuda"):
        raise ExecutorError(f"device '{config_device}' asked for, but the Ray cluster has no GPU; use --device cpu")
    return "cpu", 0


def shipped_values(mp: ModelPlan, store: Store) -> dict[str, Any]:
    """The cached values a worker's missing units read (e.g. the FTGD results transfers apply)."""
    needed = {n for u in mp.todo for n in registry.kind(u.kind).needs}
    return {u.key: store.require(u.key) for u in mp.units if u.kind in needed and u.key in mp.cached}


def model_units(mp: ModelPlan, plan: Plan, shipped: dict[str, Any], device: str) -> Iterator[tuple[Any, ...]]:
    """Worker side: load one model, yield ``(unit, value, seconds)`` per missing unit, then ``("n_parameters", n)``.

    Never touches the results cache: what a unit needs that is not computed here comes
    from ``shipped``. The model must be the one the driver planned for (same weight
    fingerprint), or the units would be stored under another model's keys.
    """
    from taskspace_core.models import describe, load_model

    loaded = load_model(replace(mp.entry.spec, device=device))
    if loaded.fingerprint != mp.fingerprint:
        raise ModelError(
            f"{mp.entry.spec.label} loaded on the worker has other weights than on the driver "
            f"(fingerprint {loaded.fingerprint[:10]} vs {mp.fingerprint[:10]}): set dtype explicitly in the "
            "config and pin the revision"
        )

    def cached_value(key: str) -> Any:
        if key not in shipped:
            raise KeyError(f"unit {key} was neither computed on this worker nor shipped by the driver")
        return shipped[key]

    yield from compute_units(mp, plan, loaded, cached_value)
    yield ("n_parameters", describe(loaded)["n_parameters"])


Worker = Callable[[ModelPlan, Plan, dict, str], Iterator[tuple[Any, ...]]]


def run_ray(
    plan: Plan,
    store: Store,
    progress: Progress,
    address: str | None = None,
    worker: Worker = model_units,
    max_retries: int = MAX_RETRIES,
) -> list[SpaceResult]:
    """Run every model that needs work as a Ray task; write each streamed unit on the driver.

    ``address``: ``None`` starts a local Ray (all CPUs/GPUs of this machine) unless Ray is
    already initialised; ``auto`` or ``host:port`` joins a running cluster. ``worker`` is the
    task body (tests swap in a flaky one).
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        if address:  # joining a cluster: its head decides dashboards and resources
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
        started = True
    try:
        return _drive(ray, plan, store, progress, worker, max_retries)
    finally:
        if started:
            ray.shutdown()


def _drive(
    ray: Any, plan: Plan, store: Store, progress: Progress, worker: Worker, max_retries: int
) -> list[SpaceResult]:
    gpus = float(ray.cluster_resources().get("GPU", 0))
    todo = needs_work(plan, store)
    # the plan without its model list: workers need the config and the tasks, put once in the object store
    shared = ray.put(Plan(plan.config, plan.taskset, []))
    task = ray.remote(worker)
    pending: dict[Any, int] = {}  # streaming generator -> model index
    n_params: dict[int, int] = {}
    spaces = []
    for i in todo:
        mp = plan.models[i]
        if not mp.todo:  # all units cached, only the space is missing: assemble on the driver
            spaces.append(assemble_space(mp, plan, store, None))
            continue
        device, num_gpus = worker_device(mp.entry.spec.device, gpus)
        gen = task.options(
            num_cpus=1,
            num_gpus=num_gpus,
            max_retries=max_retries,
            retry_exceptions=retry_exceptions(),
            name=f"taskspace:{mp.entry.spec.label}",
        ).remote(mp, shared, shipped_values(mp, store), device)
        pending[gen] = i
    progress.message = f"{len(pending)} model(s) on Ray ({gpus:g} GPU(s) in the cluster)"
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=_WAIT_S)
            for gen in ready:
                i = pending[gen]
                try:
                    ref = next(gen)
                except StopIteration:
                    del pending[gen]
                    spaces.append(_finish(plan, store, i, n_params.get(i, 0)))
                    continue
                item = ray.get(ref)  # a worker's error (after its retries) surfaces here
                if item[0] == "n_parameters":
                    n_params[i] = int(item[1])
                    continue
                unit, value, seconds = item
                _write_once(store, unit, value, plan, i, seconds, progress)
    finally:
        for gen in pending:  # interrupted or failed: stop the other models' workers
            ray.cancel(gen, force=True)
    return spaces


def _write_once(store: Store, unit: Unit, value: Any, plan: Plan, i: int, seconds: float, progress: Progress) -> None:
    mp = plan.models[i]
    if store.has(unit.key):  # replayed by a retried worker, or written by a concurrent run
        mp.cached.add(unit.key)
        return
    write_unit(store, unit, value, mp, plan, seconds)
    progress.message = mp.entry.spec.label
    progress.done(unit.kind, seconds)


def _finish(plan: Plan, store: Store, i: int, n_parameters: int) -> SpaceResult:
    mp = plan.models[i]
    missing = [u.key for u in mp.units if not store.has(u.key)]
    if missing:
        raise RuntimeError(f"{len(missing)} unit(s) of {mp.entry.spec.label} are missing after its Ray task")
    space = assemble_space(mp, plan, store, None)
    if n_parameters:  # the driver never loaded the model: take the count the worker reported
        space = replace(space, model=replace(space.model, n_parameters=n_parameters))
        save_space(store, mp.space_key, space)
    return space


def execute(
    name: str,
    plan: Plan,
    store: Store,
    progress: Progress,
    loaded: dict[int, LoadedModel] | None = None,
    address: str | None = None,
) -> list[SpaceResult]:
    """Run a plan with the executor ``name`` (``local`` | ``ray``)."""
    if name == "local":
        if address:
            raise ExecutorError("--address only applies to --executor ray")
        return run_local(plan, store, progress, loaded)
    if name == "ray":
        if loaded:
            loaded.clear()  # models loaded for planning are not needed on the driver: free their memory
        return run_ray(plan, store, progress, address=address)
    raise ExecutorError(f"executor '{name}' is not known; use one of {', '.join(EXECUTORS)}")
