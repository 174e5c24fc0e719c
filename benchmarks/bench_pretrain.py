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

With ``--preset learns`` (or ``gpu``) it trains that budget instead (into cache/suite-<preset>,
BLiMP scored at every checkpoint during training) and prints the plan with its FLOPs-based
time estimate, tokens/s per size, the wall time, and the per-category BLiMP table at each
checkpoint of the largest size (``--steps`` shortens the run, checkpoints log-spaced anew).
"""

from __future__ import annotations

import argparse
import json
import os
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


def run_preset(args: argparse.Namespace) -> None:
    """Train a named budget with per-checkpoint BLiMP; print throughput and the largest size's curve."""
    from dataclasses import replace

    from taskspace_core.pretrain import log_spaced
    from taskspace_core.pretrain_eval import CheckpointEvaluator, eval_tasks
    from taskspace_core.pretrain_presets import PRESETS, format_plan

    preset = PRESETS[args.preset]
    cfg = preset.config
    if args.steps:
        cfg = replace(cfg, steps=args.steps, checkpoints=tuple(log_spaced(args.steps, len(cfg.checkpoints))))
    preset = replace(preset, config=cfg)
    print(format_plan(preset), flush=True)
    if preset.threads:
        torch.set_num_threads(preset.threads)
    out = Path(args.out) if args.out else suite_dir(ROOT / "cache").with_name(f"suite-{preset.name}")
    evaluate = CheckpointEvaluator(eval_tasks(require_blimp(), pairs=args.pairs))
    t0 = time.perf_counter()
    device = "cuda" if preset.device == "cuda" and torch.cuda.is_available() else "cpu"
    suite = pretrain(resolve_corpus(args.corpus or preset.corpus), preset.sizes, cfg, out,
                     log=lambda s: print(s, flush=True), device=device, evaluate=evaluate)  # fmt: skip
    wall = time.perf_counter() - t0
    print(f"\n== throughput ({torch.get_num_threads()} threads on {device}; machine load {os.getloadavg()[0]:.1f})")
    for name, info in suite["sizes"].items():
        print(f"{name:>8}: {info['non_embedding_params'] / 1e6:.2f}M non-embedding  "
              f"{info.get('tokens_per_second', float('nan')):,.0f} tokens/s  "
              f"train {info.get('train_seconds', 0):.0f} s  "
              f"checkpoints+BLiMP {info.get('checkpoint_seconds', 0):.0f} s")  # fmt: skip
    largest = max(suite["sizes"], key=lambda n: suite["sizes"][n]["non_embedding_params"])
    rows = [{"step": c["step"], "tokens": c["tokens_seen"], "held-out loss": c["heldout_loss"],
             **c.get("blimp", {}).get("categories", {})} for c in suite["curves"][largest]]  # fmt: skip
    print(f"\n== BLiMP accuracy per category at each checkpoint of {largest} ({args.pairs} pairs per paradigm)")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"\nwall time {wall / 60:.1f} min; peak RSS {peak_rss_mb():.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="suite directory (default cache/suite, or cache/suite-<preset>)")
    ap.add_argument("--preset", default=None, help="train a named budget (learns, gpu) with per-checkpoint BLiMP")
    ap.add_argument("--corpus", default=None, help="default brown (or the preset's corpus)")
    ap.add_argument("--sizes", default="tiny,small,base")
    ap.add_argument("--steps", type=int, default=None, help=f"default {PretrainConfig().steps} (or the preset's)")
    ap.add_argument("--pairs", type=int, default=200, help="BLiMP pairs per paradigm (first N in file order)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: leave the other core to others)")
    args = ap.parse_args()
    if args.preset:
        run_preset(args)
        return
    torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()  # no "loading weights" bar per model in the report
    blimp = require_blimp()
    out = Path(args.out) if args.out else suite_dir(ROOT / "cache")
    args.corpus, args.steps = args.corpus or "brown", args.steps or PretrainConfig().steps
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
