"""GPU benchmark (run by ``bench_gpu.sh``): scoring pairs/s, FTGD s/task, two whole runs (issue 13 item 7).

Prints the device (the card's name), then

1. scoring: pairs/s on the first 15 pairs of every BLiMP paradigm (1,005 pairs) with the
   automatic batch size, in the project's CUDA default (bf16 weights) and, on a GPU, with
   fp32 weights under bf16 autocast;
2. FTGD: seconds per task with the default analysis' FTGD switches, on its first 2 tasks;
3. the default analysis (``configs/default.yaml``): wall time of ``precompute run`` in a
   fresh cache (model conversion not timed);
4. the BLiMP-full first-order config (``configs/blimp_full.yaml``): wall time, likewise.

Sized to take <= 5 min on one GPU. Without a GPU (or with ``--reduced``) every part is cut
down so that CI can check it still works on a CPU: 32 pairs, 2 FTGD steps on 8 pairs, and
both configs on their first 3 tasks with 8 + 8 pairs and 2 FTGD steps (``--model`` swaps
in another model everywhere, e.g. a tiny one).

    bash benchmarks/bench_gpu.sh [--reduced] [--model DIR] [--blimp DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import ROOT, SHARED_BLIMP

DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"
BLIMP_CONFIG = ROOT / "configs" / "blimp_full.yaml"
REDUCED_PROBE = {"n_tune": 8, "n_eval": 8}
REDUCED_FTGD = {"steps": 2, "mask_pairs": 4, "batch_size": 4}


def card_name() -> str:
    """The accelerator's name from torch and nvidia-smi, or the CPU's when there is none."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        if shutil.which("nvidia-smi"):
            q = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
            smi = subprocess.run(q, capture_output=True, text=True, check=False).stdout.strip().splitlines()
            name += f" (nvidia-smi: {smi[0]})" if smi else ""
        return name
    cpu = next((ln.split(":", 1)[1].strip() for ln in _cpuinfo() if ln.startswith("model name")), "unknown CPU")
    return f"no GPU; CPU {cpu}, {len(os.sched_getaffinity(0))} cores available"


def _cpuinfo() -> list[str]:
    p = Path("/proc/cpuinfo")
    return p.read_text().splitlines() if p.exists() else []


def _cut_source(spec: str, k: int) -> str:
    """The first ``k`` tasks of a task source, as a source spec of the same kind."""
    from taskspace_core.sources import load_tasks

    names = ",".join(load_tasks(spec).names[:k])
    kind, _, rest = spec.partition(":")
    if kind == "builtin":
        return f"builtin:{names}"
    if kind in ("blimp", "hub"):
        return f"{kind}:{rest.partition(':')[0]}:{names}"
    raise ValueError(f"cannot cut task source {spec!r} (builtin, blimp and hub sources can be cut)")


def bench_config(path: Path, reduced: bool, model: str | None, blimp: Path, device: str) -> dict:
    """The config to time: the file as it is, or cut down (first 3 tasks, 8 + 8 pairs, 2 FTGD steps)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["device"] = device
    raw["tasks"] = [t.replace("blimp:../shared/blimp", f"blimp:{blimp}") for t in raw["tasks"]]
    if model:
        raw["models"] = [{**m, "name": model} for m in raw["models"]]
    if reduced:
        raw["tasks"] = [_cut_source(t, 3) for t in raw["tasks"]]
        raw["probe"] = {**raw.get("probe", {}), **REDUCED_PROBE}
        raw["ftgd"] = {**raw.get("ftgd", {}), **REDUCED_FTGD}
    return raw


def time_run(raw: dict, env: dict[str, str], work: Path) -> tuple[float, int]:
    """Wall seconds of ``precompute run`` in a fresh cache, and the number of units it computed."""
    from taskspace_core.model_files import OFFLINE_DEFAULT
    from taskspace_core.paths import models_dir

    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    models_dir(cache).mkdir(parents=True)
    converted = models_dir() / OFFLINE_DEFAULT  # link the converted offline default in: conversion is not timed
    if converted.exists():
        os.symlink(converted, models_dir(cache) / OFFLINE_DEFAULT)
    cfg = cache / f"{raw['name']}.yaml"
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    env = {**env, "TASKSPACE_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "precompute", "run", "--config", str(cfg)]
    t0 = time.perf_counter()
    subprocess.run([*cmd, "--quiet"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    summary = _plan_summary(cfg, cache)
    if summary["units_todo"]:
        raise RuntimeError(f"{raw['name']}: {summary['units_todo']} units still to do after the run")
    return wall, int(summary["units_total"])


def _plan_summary(cfg: Path, cache: Path) -> dict[str, int]:
    """The plan of a finished run, made in this process (the fingerprints are in that cache)."""
    from precompute.config import load_config
    from precompute.runner import build_plan
    from taskspace_core.store import Store

    before = os.environ.get("TASKSPACE_CACHE")
    os.environ["TASKSPACE_CACHE"] = str(cache)
    try:
        with Store(cache) as store:
            summary = build_plan(load_config(cfg), store, load_weights=False).summary(store)
            return {"units_todo": summary["units_todo"], "units_total": summary["units_total"]}
    finally:
        if before is None:
            os.environ.pop("TASKSPACE_CACHE")
        else:
            os.environ["TASKSPACE_CACHE"] = before


def scoring_pairs(blimp: Path, n: int) -> list:
    from taskspace_core.tasks import load_blimp_dir

    tasks = load_blimp_dir(blimp).tasks
    per = max(1, -(-n // len(tasks)))  # 15 of each of the 67 paradigms for n = 1005
    pairs = [p for t in tasks for p in t.pairs[:per]]
    return pairs[:n]


def bench_scoring(spec, pairs: list, autocast: bool) -> float:
    """Pairs/s of one warm pass (after a warm-up on the first batch), automatic batch size."""
    import contextlib

    import torch

    from taskspace_core.models import load_model
    from taskspace_core.scoring import PairScorer, ScoringConfig

    loaded = load_model(spec)
    scorer = PairScorer(loaded, ScoringConfig())
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    with ctx:
        scorer.score_pairs(pairs[:32])
        if loaded.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        scorer.score_pairs(pairs)
        if loaded.device.type == "cuda":
            torch.cuda.synchronize()
    return len(pairs) / (time.perf_counter() - t0)


def bench_ftgd(raw: dict, device: str) -> tuple[float, int, int]:
    """Seconds per FTGD unit on the config's first 2 tasks (model loaded once, not timed)."""
    from taskspace_core.configs import parse_config
    from taskspace_core.models import load_model
    from taskspace_core.probing import ftgd_unit
    from taskspace_core.sources import load_many

    cfg = parse_config(raw, "ftgd-bench", device)
    pcfg = cfg.probe_config()
    loaded = load_model(cfg.models[0].spec)
    tasks = load_many(cfg.tasks).tasks[:2]
    t0 = time.perf_counter()
    for t in tasks:
        ftgd_unit(loaded, t, pcfg)
    return (time.perf_counter() - t0) / len(tasks), len(tasks), pcfg.ftgd.steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reduced", action="store_true", help="cut-down sizes (automatic when there is no GPU)")
    ap.add_argument("--model", default=None, help="a model for every part instead of the configs' own")
    ap.add_argument("--blimp", type=Path, default=SHARED_BLIMP, help="folder of BLiMP's *.jsonl files")
    args = ap.parse_args(argv)
    import torch

    from taskspace_core.configs import ModelSpec

    t_start = time.perf_counter()
    gpu = torch.cuda.is_available()
    reduced = args.reduced or not gpu
    device = "cuda" if gpu else "cpu"
    if not args.blimp.is_dir():
        sys.exit(f"BLiMP files not found at {args.blimp}; pass --blimp DIR")
    print(f"device: {card_name()}")
    print(f"mode: {'reduced' if reduced else 'full'}{' (no GPU)' if not gpu else ''}")
    model = args.model or "smollm2-135m"
    pairs = scoring_pairs(args.blimp, 32 if reduced else 1005)
    rate = bench_scoring(ModelSpec(model, device=device), pairs, autocast=False)
    dtype = "bf16 weights" if gpu else "fp32"
    print(f"scoring: {rate:.1f} pairs/s ({len(pairs)} BLiMP pairs, {dtype}, automatic batch size)")
    if gpu:
        rate = bench_scoring(ModelSpec(model, device=device, dtype="float32"), pairs, autocast=True)
        print(f"scoring: {rate:.1f} pairs/s ({len(pairs)} BLiMP pairs, fp32 weights + bf16 autocast)")
    default_raw = bench_config(DEFAULT_CONFIG, reduced, args.model, args.blimp, device)
    per_task, n_tasks, steps = bench_ftgd(default_raw, device)
    print(f"ftgd: {per_task:.2f} s/task ({n_tasks} tasks, {steps} steps, default analysis switches)")
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as work:
        env = {**os.environ}
        for label, path in (("default analysis", DEFAULT_CONFIG), ("blimp_full (first-order)", BLIMP_CONFIG)):
            raw = bench_config(path, reduced, args.model, args.blimp, device)
            wall, units = time_run(raw, env, Path(work))
            print(f"{label}: {wall:.1f} s wall, {units} units, fresh cache ({path.name}{', cut down' * reduced})")
    print(f"total: {(time.perf_counter() - t_start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
