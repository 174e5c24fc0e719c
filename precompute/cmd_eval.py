"""``eval``: accuracy and mean margin of one model on task sets, cached per task."""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from precompute.common import add_model_args, fingerprint_or_load, model_spec, table
from taskspace_core.configs import ModelSpec, ScoringConfig
from taskspace_core.sources import load_many
from taskspace_core.store import Store, make_key
from taskspace_core.tasks import Task


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score minimal pairs: per-task accuracy and mean margin")
    add_model_args(p)
    p.add_argument(
        "--tasks", action="append", required=True, help="builtin[:p1,p2] | blimp:<dir>[:p1,p2] | hub:blimp | file.csv"
    )
    p.add_argument("--limit-pairs", type=int, default=None, help="score only the first N pairs of each task")
    p.add_argument("--reduction", default="sum", choices=["sum", "mean"], help="sentence log-prob: sum or per-token")
    p.add_argument("--no-share-prefix", action="store_true", help="score both sentences in full (slower, same numbers)")
    p.add_argument("--batch-tokens", type=int, default=0, help="tokens per forward pass (0: from free memory)")
    p.set_defaults(func=run)


def scores_key(fingerprint: str, spec: ModelSpec, task: Task, cfg: ScoringConfig) -> str:
    return make_key("scores", fingerprint=fingerprint, revision=spec.revision, task=task.content_hash(), **cfg.key())


def run(args: argparse.Namespace) -> int:
    spec = model_spec(args)
    taskset = load_many(args.tasks).limited(args.limit_pairs)
    for w in taskset.warnings:
        print(f"warning: {w}")
    cfg = ScoringConfig(
        reduction=args.reduction, share_prefix=not args.no_share_prefix, max_batch_tokens=args.batch_tokens
    )
    from taskspace_core.models import load_model  # torch: only where a model is needed
    from taskspace_core.scoring import PairScorer, task_metrics

    store = Store()
    fingerprint, loaded = fingerprint_or_load(spec)
    keys = {t.name: scores_key(fingerprint, spec, t, cfg) for t in taskset}
    todo = [t for t in taskset if not store.has(keys[t.name])]
    t0 = time.perf_counter()
    if todo:
        loaded = loaded or load_model(spec)
        scorer = PairScorer(loaded, cfg)
        with tqdm(total=sum(len(t) for t in todo) * (1 if cfg.share_prefix else 2), unit="row", desc="scoring") as bar:
            for task in todo:
                res = scorer.score_pairs(task.pairs, progress=bar.update)
                value = {"task": task.name, "margins": res.margins, "metrics": task_metrics(res.margins)}
                store.put(keys[task.name], value, model=spec.label, fingerprint=fingerprint, tasks=taskset.name)
    rows = []
    for task in taskset:
        m = store.require(keys[task.name])["metrics"]
        rows.append({"task": task.name, "category": task.category, **m})
    df = pd.DataFrame(rows)
    print(f"\n{spec.label}  (fingerprint {fingerprint[:12]}, {cfg.reduction} log-prob)\n")
    print(table(df[["task", "category", "accuracy", "mean_margin", "n", "ties"]]))
    cats = df.groupby("category").agg(tasks=("task", "count"), accuracy=("accuracy", "mean"), pairs=("n", "sum"))
    print("\nper category (mean over tasks):\n")
    print(table(cats.reset_index()))
    total = df["n"].sum()
    print(f"\noverall: accuracy {np.average(df['accuracy'], weights=df['n']):.3f} over {total} pairs, {len(df)} tasks")
    hits = len(taskset) - len(todo)
    if not todo:
        print(f"cache hit: all {hits} tasks read from {store.directory}")
    else:
        secs = time.perf_counter() - t0
        print(f"computed {len(todo)} task(s) in {secs:.1f} s; {hits} from cache; results in {store.directory}")
    return 0
