"""Scoring throughput: taskspace's engine vs minicons on the same model object.

SmolLM2 (offline default) on 1,005 BLiMP pairs (the first 15 of each of the 67 paradigms),
alternating runs in one process. Prints pairs/s of both, their ratio, the max |margin
difference|, peak RSS, and the fraction of the FLOP bound reached (FLOPs the margins need
with the shared prefix computed once / (wall time x measured fp32 matmul GFLOP/s)).

    .venv/bin/python benchmarks/bench_scoring.py [--rounds 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import matmul_gflops, peak_rss_mb, require_blimp

from taskspace_core.models import ModelSpec, load_model
from taskspace_core.packing import encode, pair_row
from taskspace_core.scoring import PairScorer, ScoringConfig
from taskspace_core.tasks import load_blimp_dir


def needed_flops(loaded, pairs) -> float:
    """2 x params per token for the blocks on prefix+suffixes, LM head only where a margin reads it."""
    m = loaded.model
    emb = m.get_input_embeddings().weight
    head = m.get_output_embeddings().weight
    block = sum(p.numel() for p in m.parameters()) - emb.numel() - (0 if head is emb else head.numel())
    good = encode(loaded.tokenizer, loaded.bos_id, [p.good for p in pairs])
    bad = encode(loaded.tokenizer, loaded.bos_id, [p.bad for p in pairs])
    total = 0.0
    for g, b in zip(good, bad, strict=True):
        r = pair_row(g, b)
        total += 2 * block * len(r) + 2 * head.numel() * (len(r.good) + len(r.bad))
    return total


def minicons_margins(scorer, pairs, batch: int = 32) -> np.ndarray:
    out = []
    for s in range(0, len(pairs), batch):
        chunk = pairs[s : s + batch]
        g = scorer.sequence_score([p.good for p in chunk], reduction=lambda x: x.sum(0).item(), bos_token=True)
        b = scorer.sequence_score([p.bad for p in chunk], reduction=lambda x: x.sum(0).item(), bos_token=True)
        out.extend(np.array(g) - np.array(b))
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--per-task", type=int, default=15)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from minicons import scorer as mscorer

    ts = load_blimp_dir(require_blimp())
    pairs = [p for t in ts for p in t.pairs[: args.per_task]]
    loaded = load_model(ModelSpec(device=args.device))
    ours = PairScorer(loaded, ScoringConfig())
    theirs = mscorer.IncrementalLMScorer(loaded.model, device=args.device, tokenizer=loaded.tokenizer)
    print(f"model {loaded.spec.label} on {loaded.device}, {torch.get_num_threads()} threads, {len(pairs)} pairs")
    times: dict[str, list[float]] = {"taskspace": [], "minicons": []}
    with torch.inference_mode():
        for r in range(args.rounds):
            t0 = time.perf_counter()
            m_ours = ours.score_pairs(pairs).margins
            times["taskspace"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            m_theirs = minicons_margins(theirs, pairs)
            times["minicons"].append(time.perf_counter() - t0)
            print(f"round {r + 1}: taskspace {times['taskspace'][-1]:.1f} s, minicons {times['minicons'][-1]:.1f} s")
    best = {k: min(v) for k, v in times.items()}
    rate = {k: len(pairs) / v for k, v in best.items()}
    gflops = matmul_gflops()
    frac = needed_flops(loaded, pairs) / (best["taskspace"] * gflops * 1e9)
    acc = {"taskspace": float((m_ours > 0).mean()), "minicons": float((m_theirs > 0).mean())}
    print(f"taskspace: {rate['taskspace']:.1f} pairs/s   minicons: {rate['minicons']:.1f} pairs/s")
    print(f"ratio taskspace/minicons: {rate['taskspace'] / rate['minicons']:.2f}x (best of {args.rounds} rounds each)")
    print(f"max |margin difference|: {np.abs(m_ours - m_theirs).max():.2e} nats")
    print(f"accuracy: taskspace {acc['taskspace']:.3f}, minicons {acc['minicons']:.3f}")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    print(f"fp32 matmul: {gflops:.1f} GFLOP/s; FLOP-bound fraction reached: {frac:.2f}")


if __name__ == "__main__":
    main()
