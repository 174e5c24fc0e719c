"""The probing runner: plan, cache hits, kill and resume, O(N) growth, export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from precompute.cli import main
from precompute.config import load_config
from precompute.runner import build_plan
from taskspace_core.results import list_spaces, load_space
from taskspace_core.store import Store
from tests.tiny_runs import save_model, write_config, write_tasks

ROOT = Path(__file__).resolve().parents[1]


def model_entry(model_dir: Path) -> dict:
    return {"name": str(model_dir), "size": "tiny", "step": 10}


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    model_dir = save_model(tmp_path / "model")
    csv = write_tasks(tmp_path / "tasks.csv")
    return tmp_path, model_dir, csv, write_config(tmp_path, [model_entry(model_dir)], csv)


def space_of(cache: Path):
    store = Store(cache)
    recs = list_spaces(store)
    assert len(recs) == 1
    return load_space(store, recs[0]["key"])


def test_run_assembles_a_space_and_rerun_is_a_cache_hit(setup, capsys):
    tmp, _, _, cfg = setup
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    sp = space_of(tmp / "cache")
    assert sp.names == ["sva_singular", "sva_plural", "det_noun"]
    assert sp.T.shape == (3, 3) and np.isfinite(sp.T).all() and sp.G.shape == (3, 3)
    assert sp.model.size_label == "tiny" and sp.model.step == 10 and sp.series == "tiny-series"
    capsys.readouterr()
    assert main(["run", "--config", str(cfg), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["units_total"] == 3 + 3 + 9 and plan["units_todo"] == 0
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    assert "cache hit" in capsys.readouterr().out


def test_adding_a_task_costs_order_n_units(setup):
    tmp, model_dir, _, cfg = setup
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    bigger = write_config(tmp, [model_entry(model_dir)], write_tasks(tmp / "tasks4.csv", 4), name="tiny4")
    # the 4-task set is a different file; its first three tasks have the same content
    plan = build_plan(load_config(bigger), Store(tmp / "cache"))
    counts = plan.counts()
    new = {k: c["total"] - c["cached"] for k, c in counts.items()}
    assert new == {"base": 1, "ftgd": 1, "transfer": 2 * 3 + 1}


def test_killed_run_resumes_to_identical_matrices(setup, tmp_path):
    tmp, _, _, cfg = setup
    # reference: an uninterrupted run in its own cache
    env = {**os.environ, "TASKSPACE_CACHE": str(tmp / "ref-cache")}
    ref = subprocess.run(
        [sys.executable, "-m", "precompute", "run", "--config", str(cfg), "--quiet"], env=env, cwd=ROOT
    )
    assert ref.returncode == 0
    progress = tmp / "progress.json"
    env = {**os.environ, "TASKSPACE_CACHE": str(tmp / "cache")}
    # tiny units finish in milliseconds: slow each transfer in the child so the kill lands mid-run
    args = ["run", "--config", str(cfg), "--quiet", "--progress-file", str(progress)]
    child = (
        "import sys, time; import taskspace_core.probing as p; f = p.transfer_unit; "
        "p.transfer_unit = lambda *a, **k: (time.sleep(0.4), f(*a, **k))[1]; "
        f"from precompute.cli import main; sys.exit(main({args!r}))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and proc.poll() is None:
        if progress.exists():
            try:
                done = json.loads(progress.read_text())["done"]
            except (ValueError, KeyError):
                done = 0
            if done >= 7:  # the 6 base + FTGD units and at least one transfer
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no clean-up at all: only atomic writes can save us
    proc.wait()
    store = Store(tmp / "cache")
    before = {r["key"] for r in store.entries() if r["kind"] != "space"}
    assert 7 <= len(before) < 15, "the kill should land mid-run"
    plan = build_plan(load_config(cfg), store)
    assert plan.summary(store)["units_todo"] == 15 - len(before)
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    after = Store(tmp / "cache")
    for rec in after.entries():
        if rec["key"] in before:
            assert rec["created"] <= min(r["created"] for r in after.entries() if r["key"] not in before)
    a, b = space_of(tmp / "cache"), space_of(tmp / "ref-cache")
    for m in ("T", "G", "J", "lift_per_tensor"):
        np.testing.assert_array_equal(getattr(a, m), getattr(b, m))


def test_export_writes_matrices_statistics_and_manifest(setup, tmp_path):
    tmp, _, _, cfg = setup
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    out = tmp / "export"
    assert main(["export", "--config", str(cfg), "--out", str(out), "--permutations", "99"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["versions"]) >= {"taskspace", "torch", "transformers"}
    (model_dir,) = [p for p in out.iterdir() if p.is_dir()]
    for f in ("T.csv", "G.csv", "J.csv", "T_profile.csv", "statistics.csv", "tasks.csv"):
        assert (model_dir / f).exists(), f
    stats = json.loads((model_dir / "statistics.json").read_text())
    assert {f["level"] for f in stats["fits"]} >= {"category"}


def test_config_errors_name_the_field(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [{revision: main}]\ntasks: [builtin]\n")
    assert main(["run", "--config", str(bad), "--dry-run"]) == 2
    assert "models[0]" in capsys.readouterr().err


def test_eta_scales_with_unit_size(setup):
    """Measured unit times are kept per unit of work, so a plan with 3x the eval pairs expects 3x the scoring time."""
    import yaml

    from precompute.runner import unit_seconds
    from taskspace_core import methods
    from taskspace_core.methods import registry

    tmp, _, _, cfg = setup
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    store = Store(tmp / "cache")
    recs = [r for r in store.entries() if r.get("kind") == "transfer"]
    assert recs and all(r["work"] == pytest.approx(8 / 48, abs=1e-4) for r in recs)  # n_eval 8 of the reference 48
    per_work = unit_seconds(store)
    assert per_work["transfer"] == pytest.approx(np.mean([r["seconds"] / r["work"] for r in recs]))
    # another model is priced by the registry's guesses, not by this tiny model's measured units
    other = unit_seconds(store, {"fingerprint-of-another-model"})
    assert other == {k.name: k.seconds for k in registry.kinds()}
    assert unit_seconds(store, {recs[0]["fingerprint"]})["transfer"] == pytest.approx(per_work["transfer"])

    raw = yaml.safe_load(cfg.read_text())
    etas = {}
    for n_eval in (8, 24):
        raw["probe"]["n_eval"] = n_eval
        raw["name"] = f"eta{n_eval}"
        path = tmp / f"eta{n_eval}.yaml"
        path.write_text(yaml.safe_dump(raw))
        plan = build_plan(load_config(path), store)
        kind = methods.kind("transfer")
        assert kind.size(plan.pcfg) == pytest.approx(n_eval / 48)
        etas[n_eval] = sum(per_work[u.kind] * methods.kind(u.kind).size(plan.pcfg) for mp in plan.models
                           for u in mp.units if u.kind in ("base", "transfer"))  # fmt: skip
    assert build_plan(load_config(tmp / "eta8.yaml"), store).summary(store).estimated_seconds == 0  # all cached
    assert etas[24] == pytest.approx(3 * etas[8])


def test_one_model_resident_at_a_time(setup, monkeypatch):
    import gc
    import weakref

    import taskspace_core.models as models_mod
    from precompute.executors import run_local
    from precompute.runner import Progress

    tmp, model_dir, csv, _ = setup
    other = save_model(tmp / "model2", seed=5)
    cfg = write_config(tmp, [model_entry(model_dir), {**model_entry(other), "step": 20}], csv, name="two")
    alive: list[weakref.ref] = []
    overlaps: list[int] = []
    real = models_mod.load_model

    def load_model(spec):
        gc.collect()
        overlaps.append(sum(r() is not None for r in alive))  # models still in memory as another loads
        lm = real(spec)
        alive.append(weakref.ref(lm.model))
        return lm

    monkeypatch.setattr(models_mod, "load_model", load_model)
    store = Store(tmp / "cache")
    loaded: dict = {}
    plan = build_plan(load_config(cfg), store, loaded)  # neither fingerprint known yet: both load
    assert list(loaded) == [1]  # only the last one stays, for the run
    spaces = run_local(plan, store, Progress(plan, store, None, show=False), loaded)
    assert [s.model.step for s in spaces] == [10, 20]  # plan order, though model 1 ran first
    assert overlaps == [0, 0, 0]  # model 0 loaded again for its run, never beside model 1
