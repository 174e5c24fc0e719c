"""Wall time and peak RSS of a probing config (default: the offline default analysis).

Runs ``python -m precompute run`` in a fresh cache (the converted SmolLM2 is linked in, so
conversion is not timed), then reports: wall time, peak RSS of the run, the share of unit
time spent tuning (FTGD) vs evaluating (base + transfer), the time of a rerun (a cache
hit), and the speed-up of applying a task's sparse update in place (and restoring it)
over a deep copy of the model per task.

    .venv/bin/python benchmarks/bench_probing.py [--config configs/default.yaml] [--keep DIR]
    .venv/bin/python benchmarks/bench_probing.py --rerun [--small] [--keep DIR]

    .venv/bin/python benchmarks/bench_probing.py --transfer-phase [--tasks 4] [--rounds 2]
    .venv/bin/python benchmarks/bench_probing.py --busy [--config F] [--warmup 30]

``--busy`` runs the config in two fresh caches, first on the quiet machine and then beside a
competing busy process (``while True: pass``) that it starts ``--warmup`` seconds before and
stops after, and prints both wall times and their ratio (issue 13: at most ~2x).

``--transfer-phase`` times, in this process on SmolLM2 (the config's first model spec), the exact
transfer evaluation of the config's first ``--tasks`` tasks both ways: one small batch set per
(tuned, evaluated) unit as before, and one length-sorted stream per tuned task (what the runner
does now), in alternating rounds; the FTGD updates it applies are tuned once first with 2 steps
(the delta's size, which is what evaluation sees, is set by the mask fraction, not the steps).
``--rerun`` times only cache-hit reruns (computing the config once first if the cache lacks
it), checks that they import no torch, and times a dry-run plan of the full config on the
same cache. ``--small`` runs a cut-down copy of the config (its first 3 tasks, 8 + 8 pairs,
2 FTGD steps), to measure the cache-hit path without the 14-minute computation.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import ROOT, peak_rss_mb

from taskspace_core.paths import models_dir
from taskspace_core.store import Store


def run(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=ROOT, check=True)
    return time.perf_counter() - t0


def inplace_vs_deepcopy(cache: Path, reps: int) -> tuple[float, float]:
    """Seconds per task: apply+restore a cached FTGD update in place vs deep-copy + apply."""
    os.environ["TASKSPACE_CACHE"] = str(cache)
    import torch

    from taskspace_core.ftgd import applied
    from taskspace_core.models import ModelSpec, load_model

    store = Store(cache)
    lm = load_model(ModelSpec("smollm2-135m", device="cpu"))
    recs = [r for r in store.entries("ftgd") if r.get("fingerprint") == lm.fingerprint]
    results = [store.get(r["key"]) for r in recs][:reps]
    with applied(lm, results[0]):  # untimed: the first write to freshly loaded weights faults their pages in
        pass
    t0 = time.perf_counter()
    for res in results:
        with applied(lm, res):
            pass
    inplace = (time.perf_counter() - t0) / len(results)
    params = dict(lm.model.named_parameters())
    t0 = time.perf_counter()
    for res in results:
        clone = copy.deepcopy(lm.model)
        cparams = dict(clone.named_parameters())
        for name, (idx, vals) in res.delta.items():
            flat = cparams[name].data.view(-1)
            flat[torch.from_numpy(idx.astype("int64"))] += torch.from_numpy(vals.astype("float32"))
        del clone
    deep = (time.perf_counter() - t0) / len(results)
    assert set(res.delta) <= set(params)
    return inplace, deep


def small_config(config: str, out: Path) -> str:
    """The config cut down to its first three built-in tasks and tiny limits (same models, same methods)."""
    raw = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    src = raw["tasks"][0]
    kind, names = src.split(":", 1) if ":" in src else (src, "")
    raw["tasks"] = [f"{kind}:{','.join(names.split(',')[:3])}"] if names else raw["tasks"]
    raw["name"] = f"{raw.get('name', 'config')}-small"
    raw["probe"] = {**(raw.get("probe") or {}), "n_tune": 8, "n_eval": 8}
    raw["ftgd"] = {**(raw.get("ftgd") or {}), "steps": 2, "mask_pairs": 4, "batch_size": 4}
    path = out / "small.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return str(path)


def rerun_only(cmd: list[str], env: dict, full_config: str, reps: int = 5) -> None:
    """Cache-hit reruns: wall times, whether torch was imported, and a dry-run plan of the full config."""
    probe = subprocess.run([sys.executable, "-m", "precompute", "run", "--config", cmd[-1], "--dry-run", "--json"],
                           env=env, cwd=ROOT, capture_output=True, text=True, check=True)  # fmt: skip
    if '"units_todo": 0' not in probe.stdout:
        print(f"computing {cmd[-1]} once (not timed as a rerun) ...", flush=True)
        print(f"  first run: {run([*cmd, '--quiet'], env):.0f} s")
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    times = [run([*cmd, "--quiet"], env) for _ in range(reps)]
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime) / reps  # a busy box inflates wall time
    imp = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:], "--quiet"], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stderr  # fmt: skip
    torch_lines = [ln for ln in imp.splitlines() if ln.rstrip().endswith("| torch")]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    plan_full = run([sys.executable, "-m", "precompute", "run", "--config", full_config, "--dry-run", "--json"], env)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    plan_cpu = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    print(f"config: {cmd[-1]}")
    print(f"rerun (cache hit): median {sorted(times)[len(times) // 2]:.2f} s, best {min(times):.2f} s over {reps}")
    print(f"rerun CPU time (user + sys): {cpu:.2f} s per rerun; load average now {os.getloadavg()[0]:.1f}")
    print(f"torch imported by the rerun: {'yes' if torch_lines else 'no'}")
    print(f"dry-run plan of {full_config} on this cache: {plan_full:.2f} s wall, {plan_cpu:.2f} s CPU")


def transfer_phase(config: str, n_tasks: int, rounds: int) -> None:
    """Seconds of the transfer evaluation per unit vs streamed, and the largest margin difference."""
    import dataclasses

    import numpy as np
    import torch

    from taskspace_core import probing
    from taskspace_core.configs import load_config
    from taskspace_core.ftgd import applied
    from taskspace_core.models import load_model
    from taskspace_core.sources import load_many

    cfg = load_config(config, device="cpu")
    pcfg = cfg.probe_config()
    pcfg = dataclasses.replace(pcfg, ftgd=dataclasses.replace(pcfg.ftgd, steps=2))
    tasks = list(load_many(cfg.tasks).tasks[:n_tasks])
    lm = load_model(dataclasses.replace(cfg.models[0].spec, device="cpu"))
    results = [probing.ftgd_unit(lm, t, pcfg) for t in tasks]

    def per_unit() -> list[dict]:
        out = []
        for res in results:
            with applied(lm, res):
                out += [probing.transfer_unit(lm, res, t, pcfg) for t in tasks]
        return out

    def streamed() -> list[dict]:
        return [u for res in results for u in probing.transfer_row(lm, res, tasks, pcfg)]

    times: dict[str, list[float]] = {"per unit": [], "streamed": []}
    cpu: dict[str, list[float]] = {"per unit": [], "streamed": []}  # one thread: CPU time barely feels a busy box
    values: dict[str, list[dict]] = {}
    for _ in range(rounds):
        for name, fn in (("per unit", per_unit), ("streamed", streamed)):
            t0, c0 = time.perf_counter(), time.process_time()
            values[name] = fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    diff = max(
        float(np.abs(a["margins"] - b["margins"]).max())
        for a, b in zip(values["per unit"], values["streamed"], strict=True)
    )
    n_pairs = sum(len(u["margins"]) for u in values["streamed"])
    print(
        f"transfer phase: {len(tasks)} tasks x {len(tasks)} = {len(tasks) ** 2} units, {n_pairs} eval pairs scored, "
        f"{pcfg.n_eval} eval pairs per task, {torch.get_num_threads()} torch thread(s), {rounds} alternating rounds"
    )
    for name, ts in times.items():
        print(
            f"  {name:>8}: wall best {min(ts):6.2f} s, median {sorted(ts)[len(ts) // 2]:6.2f} s; "
            f"CPU best {min(cpu[name]):6.2f} s"
        )
    wall_x, cpu_x = (min(d["per unit"]) / min(d["streamed"]) for d in (times, cpu))
    print(f"  speed-up (best): wall {wall_x:.2f}x, CPU {cpu_x:.2f}x; max |margin diff| {diff:.2e} nats")
    print(f"  bench process peak RSS {peak_rss_mb():.0f} MB; load average now {os.getloadavg()[0]:.1f}")


def fresh_cache(keep: str | None = None) -> Path:
    """A cache directory (``keep``, or a new temporary one) with the converted SmolLM2 linked in."""
    cache = Path(keep or tempfile.mkdtemp(prefix="bench-probing-"))
    models_dir(cache).mkdir(parents=True, exist_ok=True)
    src = models_dir() / "smollm2-135m"
    if src.exists() and not (models_dir(cache) / "smollm2-135m").exists():
        os.symlink(src, models_dir(cache) / "smollm2-135m")
    return cache


def quiet_vs_busy(config: str, warmup: float) -> None:
    """The config in a fresh cache twice: on a quiet machine, then beside a busy process this starts and stops."""
    walls: dict[str, float] = {}
    for mode in ("quiet", "busy"):
        env = {**os.environ, "TASKSPACE_CACHE": str(fresh_cache())}
        competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if mode == "busy" else None
        try:
            if competitor:
                time.sleep(warmup)  # so that the 1-minute load average the thread policy reads sees it
            walls[mode] = run([sys.executable, "-m", "precompute", "run", "--config", config, "--quiet"], env)
        finally:
            if competitor:
                competitor.kill()
                competitor.wait()
        print(f"{mode}: {walls[mode] / 60:.1f} min ({walls[mode]:.0f} s)", flush=True)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"config: {config}; busy / quiet: {walls['busy'] / walls['quiet']:.2f}x; peak RSS of the runs: {rss:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    ap.add_argument("--keep", default=None, help="use (and keep) this cache directory instead of a temporary one")
    ap.add_argument("--rerun", action="store_true", help="time cache-hit reruns only (computes once if needed)")
    ap.add_argument("--small", action="store_true", help="with --rerun: a cut-down copy of the config")
    ap.add_argument(
        "--transfer-phase", action="store_true", help="time the exact transfer evaluation, per unit vs streamed"
    )
    ap.add_argument("--tasks", type=int, default=4, help="with --transfer-phase: the config's first N tasks")
    ap.add_argument("--rounds", type=int, default=2, help="with --transfer-phase: alternating rounds of each")
    ap.add_argument("--busy", action="store_true", help="the config quiet, then beside a busy process (fresh caches)")
    ap.add_argument("--warmup", type=float, default=30.0, help="with --busy: seconds the competitor runs first")
    args = ap.parse_args()
    if args.transfer_phase:
        transfer_phase(args.config, args.tasks, args.rounds)
        return
    if args.busy:
        quiet_vs_busy(args.config, args.warmup)
        return
    cache = fresh_cache(args.keep)
    env = {**os.environ, "TASKSPACE_CACHE": str(cache)}
    config = small_config(args.config, cache) if args.small else args.config
    cmd = [sys.executable, "-m", "precompute", "run", "--config", config]
    if args.rerun:
        rerun_only(cmd, env, args.config)
        return
    wall = run([*cmd, "--quiet"], env)
    rss_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rerun = run([*cmd, "--quiet"], env)
    store = Store(cache)
    by_kind: dict[str, float] = {}
    created = []
    for rec in store.entries():
        created.append(float(rec["created"]))
        if rec.get("seconds"):
            by_kind[rec["kind"]] = by_kind.get(rec["kind"], 0.0) + float(rec["seconds"])
    unit_total = sum(by_kind.values())
    print(f"config: {args.config}")
    print(f"wall time: {wall / 60:.1f} min ({wall:.0f} s); peak RSS of the run: {rss_child:.0f} MB")
    print(f"first to last entry written: {(max(created) - min(created)) / 60:.1f} min")
    for kind, secs in sorted(by_kind.items()):
        print(f"  {kind:>8}: {secs:7.1f} s ({100 * secs / unit_total:.0f}% of unit time)")
    tune = by_kind.get("ftgd", 0.0)
    print(f"tuning vs evaluation: {100 * tune / unit_total:.0f}% / {100 * (unit_total - tune) / unit_total:.0f}%")
    print(f"rerun (cache hit): {rerun:.1f} s", flush=True)
    inplace, deep = inplace_vs_deepcopy(cache, reps=6)
    print(
        f"per task: in-place apply+restore {inplace * 1000:.0f} ms vs deep copy + apply {deep * 1000:.0f} ms "
        f"-> {deep / inplace:.1f}x; bench process peak RSS {peak_rss_mb():.0f} MB"
    )
    print(f"cache: {store.volume() / 2**20:.0f} MB in {cache}")


if __name__ == "__main__":
    main()
