"""The Ray executor on a local 2-CPU Ray: same spaces as the local executor, retries, no double writes."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from precompute.config import load_config
from precompute.executors import ExecutorError, execute, import_ray, model_units, run_local, run_ray, worker_device
from precompute.runner import Progress, build_plan
from taskspace_core.store import Store
from tests.test_suite_config import save_checkpoints, tiny_suite_config

ray = pytest.importorskip("ray", reason="ray is not installed: pip install ray (requirements-dev.txt)")

MATRICES = ("T", "G", "J", "lift_per_tensor", "lift_uniform")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module: 2 CPUs, no dashboard (started once: it takes seconds)."""
    # workers cannot import this test module (pytest imports it from tests/ by its bare name),
    # so the flaky worker below travels by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixture in conftest.py


def crash_once(mp, plan, shipped, device):
    """A worker that dies (like a preempted node) after streaming two units of the step-0 model, once."""
    marker = Path(mp.entry.spec.name_or_path) / "crashed-once"
    for n, item in enumerate(model_units(mp, plan, shipped, device)):
        yield item
        if n == 1 and mp.entry.step == 0 and not marker.exists():
            marker.touch()
            os._exit(1)  # no exception, no cleanup: the process is just gone


def _spaces_by_fp(spaces) -> dict:
    return {s.model.fingerprint: s for s in spaces}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory):
    """Two tiny checkpoints, their config, and the spaces of a local run (the reference)."""
    root = tmp_path_factory.mktemp("suite")
    models = save_checkpoints(root, {"16h": 16}, (0, 1000))
    cfg = load_config(tiny_suite_config(root, models))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TASKSPACE_CACHE", str(root / "cache-local"))
        with Store() as store:
            loaded: dict = {}
            plan = build_plan(cfg, store, loaded)
            local = _spaces_by_fp(run_local(plan, store, Progress(plan, store, None, show=False), loaded))
    torch.set_num_threads(before)
    return models, cfg, local


def _run_on_ray(cfg, cache: Path, monkeypatch: pytest.MonkeyPatch, worker=model_units):
    """A Ray run into a fresh cache, counting every write of the driver."""
    puts: Counter = Counter()
    real_put = Store.put

    def counting_put(self, key, value, **meta):
        puts[key] += 1
        return real_put(self, key, value, **meta)

    monkeypatch.setattr(Store, "put", counting_put)
    monkeypatch.setenv("TASKSPACE_CACHE", str(cache))
    store = Store()
    plan = build_plan(cfg, store)
    progress = Progress(plan, store, cache / "progress.json", show=False)
    spaces = _spaces_by_fp(run_ray(plan, store, progress, worker=worker))
    units = [u.key for mp in plan.models for u in mp.units]
    assert all(puts[k] == 1 for k in units), "a unit was written twice (or not at all)"
    assert sum(done for done, _ in progress.counts.values()) == len(units)  # progress streamed per unit
    return spaces


def _assert_same_spaces(remote: dict, local: dict) -> None:
    assert set(remote) == set(local)
    for fp, want in local.items():
        got = remote[fp]
        assert (got.model.size_label, got.model.step) == (want.model.size_label, want.model.step)
        assert got.model.n_parameters == want.model.n_parameters > 0
        for name in MATRICES:
            a, b = getattr(want, name), getattr(got, name)
            assert (a is None) == (b is None), name
            if a is not None:
                np.testing.assert_array_equal(b, a, err_msg=name)  # same code, one thread each: bit for bit
        for task, m in want.eval1.items():
            np.testing.assert_array_equal(got.eval1[task], m)


# Starting Ray and its workers (each imports torch) takes 20 s on an idle 2-core CPU and
# minutes on a busy one, so the tests that use a Ray cluster are marked slow (CI runs them).
@pytest.mark.slow
def test_ray_run_equals_local_run(local_ray, suite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models, cfg, local = suite
    remote = _run_on_ray(cfg, tmp_path / "cache-ray", monkeypatch)
    assert len(remote) == len(models)
    _assert_same_spaces(remote, local)


@pytest.mark.slow  # plus a crashed worker's restart: one more process importing torch
def test_preempted_worker_is_retried_without_double_writes(
    local_ray, suite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models, cfg, local = suite
    remote = _run_on_ray(cfg, tmp_path / "cache-ray", monkeypatch, worker=crash_once)
    assert (Path(models[0]["name"]) / "crashed-once").exists(), "the step-0 worker should have crashed once"
    _assert_same_spaces(remote, local)


@pytest.mark.slow
def test_cli_ray_executor_on_a_cached_plan(local_ray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--executor ray through the CLI: computes, then a second run finds everything cached."""
    from precompute.cli import main

    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    config = tiny_suite_config(tmp_path, save_checkpoints(tmp_path, {"16h": 16}, (500,)))
    assert main(["run", "--config", str(config), "--quiet", "--executor", "ray"]) == 0
    assert main(["run", "--config", str(config), "--quiet", "--executor", "ray", "--dry-run", "--json"]) == 0
    with Store() as store:
        assert len(list(store.entries("space"))) == 1


def test_missing_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ExecutorError, match="pip install ray"):
        import_ray()


def test_worker_device_and_gpu_request() -> None:
    assert worker_device("auto", 0) == ("cpu", 0)
    assert worker_device("auto", 4) == ("cuda", 1)  # one GPU per model
    assert worker_device("cuda:3", 4) == ("cuda", 1)  # Ray's GPU is the worker's cuda:0
    assert worker_device("cpu", 4) == ("cpu", 0)
    with pytest.raises(ExecutorError, match="no GPU"):
        worker_device("cuda", 0)


def test_address_needs_the_ray_executor() -> None:
    with pytest.raises(ExecutorError, match="--address"):
        execute("local", None, None, None, address="auto")  # type: ignore[arg-type]
    with pytest.raises(ExecutorError, match="not known"):
        execute("dask", None, None, None)  # type: ignore[arg-type]
