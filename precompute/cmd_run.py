"""``run`` a config (plan, progress, resume) and ``export`` its results for papers."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from precompute.config import load_config
from precompute.executors import EXECUTORS, execute
from precompute.runner import Plan, Progress, build_plan
from taskspace_core.records import PlanSummary
from taskspace_core.store import Store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a config: FTGD, transfer and gradient probing, cached unit by unit")
    p.add_argument("--config", required=True, help="YAML config, e.g. configs/default.yaml")
    p.add_argument("--dry-run", action="store_true", help="print the plan (units total/cached/to do, ETA) and stop")
    p.add_argument("--json", action="store_true", help="with --dry-run: print the plan as one JSON object")
    p.add_argument(
        "--no-weights",
        action="store_true",
        help="with --dry-run: never load a model to fingerprint it (units of such a model count as not cached)",
    )
    p.add_argument("--resume", action="store_true", default=True, help="reuse cached units (always on)")
    p.add_argument("--device", default=None, help="override the config's device: auto | cpu | cuda | cuda:N")
    p.add_argument("--progress-file", default=None, help="write progress as JSON here (for the app)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--executor", default="local", choices=EXECUTORS, help="local (default) | ray: one model per GPU on Ray"
    )
    p.add_argument("--address", default=None, help="with --executor ray: a running cluster (auto or host:port)")
    p.set_defaults(func=run)
    e = sub.add_parser("export", help="write every matrix and statistic of a config as CSV + JSON")
    e.add_argument("--config", required=True)
    e.add_argument("--out", required=True, help="output directory")
    e.add_argument("--permutations", type=int, default=9999, help="Mantel permutations per statistic")
    e.set_defaults(func=export)


def _print_plan(plan: Plan, summary: PlanSummary) -> None:
    print(f"plan for '{plan.config.name}': {len(plan.models)} model(s) x {len(plan.taskset)} tasks")
    for kind, c in summary["by_type"].items():
        print(f"  {kind:>8}: {c['total']:5d} units, {c['cached']:5d} cached, {c['total'] - c['cached']:5d} to do")
    print(
        f"  total   : {summary['units_total']} units, {summary['units_cached']} cached, "
        f"{summary['units_todo']} to do; estimated {summary['estimated_seconds'] / 60:.1f} min"
    )


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, device=args.device)
    store = Store()
    loaded: dict = {}
    plan = build_plan(cfg, store, loaded, load_weights=not (args.dry_run and args.no_weights))
    summary = plan.summary(store)
    if args.dry_run:
        print(summary.to_json() if args.json else "", end="\n" if args.json else "")
        if not args.json:
            _print_plan(plan, summary)
        return 0
    _print_plan(plan, summary)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # the app cancels jobs with SIGTERM
    progress = Progress(plan, store, args.progress_file, show=not args.quiet)
    try:
        execute(args.executor, plan, store, progress, loaded, address=args.address)
    except KeyboardInterrupt:
        progress.close("cancelled")
        raise
    except Exception as e:
        progress.message = f"{type(e).__name__}: {e}"
        progress.close("failed")
        raise
    progress.close("done")
    hit = summary["units_todo"] == 0
    print(("cache hit: " if hit else "") + f"all {summary['units_total']} units are in {store.directory}")
    return 0


def export(args: argparse.Namespace) -> int:
    from precompute.export import export_plan

    cfg = load_config(args.config)
    store = Store()
    plan = build_plan(cfg, store)
    if plan.summary(store)["units_todo"]:
        print(f"error: the config is not fully computed; run: python -m precompute run --config {args.config}")
        return 2
    out = export_plan(plan, store, Path(args.out), n_permutations=args.permutations)
    print(f"exported to {out}")
    return 0
