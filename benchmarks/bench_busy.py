"""Robust to a busy machine? One FTGD unit + its evaluations, quiet and beside a competing busy process.

Each measurement runs in a fresh child process (OpenMP reads its wait policy when torch loads):

* ``old``: torch's defaults, as before: one intra-op thread per core, libgomp's default wait
  (spin a while, then sleep; ``--old-wait ACTIVE`` spins throughout).
* ``new``: :mod:`taskspace_core.threads` as the CLI uses it: brief spinning, then sleep
  (``GOMP_SPINCOUNT``), threads from the cores available (affinity, cgroup quota) and the load.

The competitor (``python -c "while True: pass"``) is started and stopped by this script; it
gets ``--warmup`` seconds first so that the 1-minute load average sees it. Prints seconds per
phase, the thread count each child chose, and the ratios busy/quiet and new/old.

    nice python benchmarks/bench_busy.py [--tasks 3] [--steps 4] [--n-eval 16] [--warmup 30] [--variants]

``--variants`` adds two more children with torch's default thread count: ``passive``
(``OMP_WAIT_POLICY=PASSIVE``) and ``spin`` (``GOMP_SPINCOUNT=--spin``: spin briefly, then sleep).

It reports, it does not assert. Other work on the machine disturbs it: say so with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ("old", "new")
# extra variants (``--variants``), all with torch's default thread count (one per core): the
# wait policy alone, e.g. when a competitor starts after the thread count was chosen
VARIANTS = ("passive", "spin")


def child(args: argparse.Namespace) -> None:
    """One measurement; prints one JSON line. Nothing imports torch before the policy is set."""
    sys.path.insert(0, str(ROOT))
    from taskspace_core import threads

    if args.child == "new":
        threads.configure_process()
    import torch

    from taskspace_core import probing
    from taskspace_core.builtin import load_builtin, paradigm_names
    from taskspace_core.ftgd import FTGDConfig, applied
    from taskspace_core.models import ModelSpec, load_model

    chosen = threads.apply_policy()
    lm = load_model(ModelSpec("smollm2-135m"))
    tasks = list(load_builtin(paradigm_names()[: args.tasks], n_pairs=2 * (args.n_tune + args.n_eval)).tasks)
    fcfg = FTGDConfig(steps=args.steps, mask_pairs=args.mask_pairs, batch_size=8)
    cfg = probing.ProbeConfig(n_tune=args.n_tune, n_eval=args.n_eval, ftgd=fcfg)
    t0 = time.perf_counter()
    result = probing.ftgd_unit(lm, tasks[0], cfg)
    t1 = time.perf_counter()
    with applied(lm, result):
        for t in tasks:
            probing.transfer_unit(lm, result, t, cfg)
    t2 = time.perf_counter()
    out = {"threads": torch.get_num_threads(), "chosen": chosen, "ftgd_s": t1 - t0, "eval_s": t2 - t1}
    spin = os.environ.get("GOMP_SPINCOUNT")
    wait = os.environ.get("OMP_WAIT_POLICY") or (f"spin{spin}" if spin else "default")
    print(json.dumps({**out, "wait": wait}), flush=True)


def measure(policy: str, args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")}
    if policy == "old" and args.old_wait != "default":
        env["OMP_WAIT_POLICY"] = args.old_wait
    elif policy == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    elif policy == "spin":
        env["GOMP_SPINCOUNT"] = str(args.spin)  # libgomp: spin this many times, then sleep
    cmd = [sys.executable, __file__, "--child", policy, *sys.argv[1:]]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
    if res.returncode or not lines:
        sys.exit(f"child {policy} failed:\n{res.stderr[-3000:]}")
    return json.loads(lines[-1])


def show(name: str, r: dict) -> None:
    total = r["ftgd_s"] + r["eval_s"]
    print(
        f"{name:<12} threads {r['threads']} wait {r['wait']:<8} ftgd {r['ftgd_s']:7.2f} s  "
        f"eval {r['eval_s']:7.2f} s  total {total:7.2f} s  (load {os.getloadavg()[0]:.2f})",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=3, help="built-in paradigms: tune on the first, evaluate all")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--mask-pairs", type=int, default=16)
    ap.add_argument("--n-tune", type=int, default=32)
    ap.add_argument("--n-eval", type=int, default=16)
    ap.add_argument("--warmup", type=float, default=30.0, help="seconds the competitor runs before measuring")
    ap.add_argument("--old-wait", default="default", choices=["default", "ACTIVE"])
    ap.add_argument("--variants", action="store_true", help="also: all cores with passive waits / with --spin")
    ap.add_argument("--spin", type=int, default=10_000, help="with --variants: GOMP_SPINCOUNT of the spin variant")
    ap.add_argument("--child", choices=POLICIES + VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    policies = POLICIES + (VARIANTS if args.variants else ())
    if args.child:
        return child(args)
    print(f"cpus {os.cpu_count()}, affinity {len(os.sched_getaffinity(0))}, load {os.getloadavg()}", flush=True)
    measure("new", args)  # untimed: converts the model into the cache once, warms the file cache
    times: dict[tuple[str, str], float] = {}
    for condition in ("quiet", "busy"):
        competitor = None
        if condition == "busy":
            competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(args.warmup)
        try:
            for policy in policies:
                r = measure(policy, args)
                show(f"{condition}/{policy}", r)
                times[condition, policy] = r["ftgd_s"] + r["eval_s"]
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()
    for policy in policies:
        print(f"busy/quiet  {policy}: {times['busy', policy] / times['quiet', policy]:.2f}x")
    for condition in ("quiet", "busy"):
        for policy in policies[1:]:
            print(f"{policy}/old {condition}: {times[condition, policy] / times[condition, 'old']:.2f}x")


if __name__ == "__main__":
    main()
