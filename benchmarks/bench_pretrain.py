"""Pretraining the offline suite: tokens/s per size, then BLiMP accuracy of each final model.

Trains tiny / small / base on Brown with the default budget of ``python -m precompute
pretrain`` (160 steps x 8 sequences x 128 tokens = 164k tokens per size, about 0.11 epoch),
on ONE CPU thread (the 2-core machine is shared), then scores the first 200 pairs of each of
the 67 BLiMP paradigms in ../shared/blimp with PairScorer, for the final checkpoint of each
size and for the step-0 initialisation of the smallest. Prints tokens/s, the held-out loss
curve, and a per-category accuracy table beside BLiMP's published 5-gram and GPT-2 numbers.

The output directory is the one configs/mini_suite.yaml points at (cache/suite), so after
this benchmark `python -m precompute run --config configs/mini_suite.yaml` finds its models.
A finished size is not retrained: its tokens/s is read back from suite.json.

    .venv/bin/python benchmarks/bench_pretrain.py [--out cache/suite] [--pairs 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import ROOT, peak_rss_mb, require_blimp
from transformers.utils import logging as hf_logging

from taskspace_core.corpus import resolve_corpus
from taskspace_core.models import ModelSpec, load_model
from taskspace_core.paths import suite_dir
from taskspace_core.pretrain import PretrainConfig, parse_sizes, pretrain
from taskspace_core.scoring import PairScorer
from taskspace_core.tasks import load_blimp_dir

AGREEMENT = ("anaphor_agreement", "determiner_noun_agreement", "subject_verb_agreement")


def reference_accuracy(blimp: Path) -> pd.DataFrame:
    """BLiMP's published per-category accuracies (5-gram, GPT-2), if the reference file is there."""
    path = blimp.parent / "blimp_reference" / "models_summary.jsonl"
    if not path.exists():
        return pd.DataFrame()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    df = pd.DataFrame(rows).rename(columns={"linguistics_term": "category", "ngram": "5-gram", "gpt2": "GPT-2"})
    return df.groupby("category")[["5-gram", "GPT-2"]].mean()


def score(path: Path, tasks, label: str) -> tuple[dict[str, float], float]:
    """Accuracy per paradigm of the model at ``path``; and the seconds it took."""
    t0 = time.perf_counter()
    loaded = load_model(ModelSpec(str(path), device="cpu"))
    scorer = PairScorer(loaded)
    acc = {}
    for task in tasks:
        m = scorer.score_pairs(task.pairs).margins
        acc[task.name] = float(np.mean(np.asarray(m) > 1e-6))
    secs = time.perf_counter() - t0
    print(f"  scored {label}: {sum(len(t) for t in tasks)} pairs in {secs:.0f} s", flush=True)
    return acc, secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(suite_dir(ROOT / "cache")), help="suite directory (default cache/suite)")
    ap.add_argument("--corpus", default="brown")
    ap.add_argument("--sizes", default="tiny,small,base")
    ap.add_argument("--steps", type=int, default=PretrainConfig().steps)
    ap.add_argument("--pairs", type=int, default=200, help="BLiMP pairs per paradigm (first N in file order)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: leave the other core to others)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()  # no "loading weights" bar per model in the report
    blimp = require_blimp()
    out = Path(args.out)
    t_start = time.perf_counter()

    print(f"== pretraining on {args.corpus} into {out} ({torch.get_num_threads()} thread)", flush=True)
    cfg = PretrainConfig(steps=args.steps)
    corpus = resolve_corpus(args.corpus)
    t0 = time.perf_counter()
    suite = pretrain(corpus, parse_sizes(args.sizes), cfg, out, log=lambda s: print(s, flush=True))
    train_secs = time.perf_counter() - t0

    sizes = suite["sizes"]
    print("\n== training throughput (1 CPU thread, machine shared with other work)")
    rows = []
    for name, info in sizes.items():
        rows.append({
            "size": name, "layers x width": f"{info['n_layer']} x {info['n_embd']}",
            "non-emb params": f"{info['non_embedding_params'] / 1e6:.2f}M",
            "total params": f"{info['total_params'] / 1e6:.2f}M",
            "tokens/s": f"{info.get('tokens_per_second', float('nan')):.0f}",
            "train s": f"{info.get('train_seconds', float('nan')):.0f}",
            "final held-out loss": f"{suite['curves'][name][-1]['heldout_loss']:.3f}",
        })  # fmt: skip
    print(pd.DataFrame(rows).to_string(index=False))

    print(f"\n== BLiMP: first {args.pairs} pairs of each paradigm in {blimp}", flush=True)
    tasks = load_blimp_dir(blimp).limited(args.pairs).tasks
    finals = {n: max((c for c in suite["checkpoints"] if c["size"] == n), key=lambda c: c["step"]) for n in sizes}
    t0 = time.perf_counter()
    per_task: dict[str, dict[str, float]] = {}
    smallest = min(sizes, key=lambda n: sizes[n]["non_embedding_params"])  # any step 0 shows the untrained floor
    per_task[f"{smallest}@0"], _ = score(out / smallest / "step0", tasks, f"{smallest} step 0")
    for name, c in finals.items():
        per_task[name], _ = score(out / c["path"], tasks, f"{name} step {c['step']}")
    score_secs = time.perf_counter() - t0

    df = pd.DataFrame(per_task)
    df["category"] = [t.category for t in tasks]
    cat = df.groupby("category").mean()
    cat.insert(0, "tasks", df.groupby("category").size())
    ref = reference_accuracy(blimp)
    if not ref.empty:
        cat = cat.join(ref)
    overall = df.drop(columns="category").mean()
    print(
        f"\naccuracy per category (mean over paradigms; {args.pairs} pairs each; chance 0.5; '{smallest}@0' = "
        "the untrained initialisation; 5-gram and GPT-2 = BLiMP paper, all 1,000 pairs)"
    )
    print(cat.to_string(float_format=lambda x: f"{x:.3f}"))
    print("overall  " + "  ".join(f"{k} {v:.3f}" for k, v in overall.items()))
    agree = df[df["category"].isin(AGREEMENT)].drop(columns="category")
    print("\nagreement paradigms:")
    print(agree.assign(paradigm=[t.name for t in tasks if t.category in AGREEMENT]).set_index("paradigm")
          .to_string(float_format=lambda x: f"{x:.3f}"))  # fmt: skip

    total = time.perf_counter() - t_start
    print(
        f"\nwall time: training {train_secs / 60:.1f} min, scoring {score_secs / 60:.1f} min, "
        f"total {total / 60:.1f} min; peak RSS {peak_rss_mb():.0f} MB"
    )


if __name__ == "__main__":
    main()
