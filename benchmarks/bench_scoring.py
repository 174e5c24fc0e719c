"""Scoring throughput: taskspace vs lm-evaluation-harness vs minicons on the same model object.

SmolLM2 (offline default) on 1,005 BLiMP pairs (the first 15 of each of the 67 paradigms),
rounds alternating the three systems (order rotated each round) in one process. Prints
pairs/s of each (best round), taskspace's ratio to each, the max |margin difference| and
accuracy of each, peak RSS, and the fraction of the prefix-shared FLOP bound taskspace
reaches (FLOPs the margins need with each pair's shared prefix computed once and the LM head
once per position a margin reads / (wall time x measured fp32 matmul GFLOP/s)).

lm-evaluation-harness runs as its users run it on BLiMP: ``HFLM.loglikelihood`` with an
empty context (the BOS conditions each sentence), batch 32; minicons as
``IncrementalLMScorer.sequence_score`` with a BOS, batch 32.

    .venv/bin/python benchmarks/bench_scoring.py [--rounds 2] [--threads 2] [--limit 200] [--profile]
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from _common import matmul_gflops, peak_rss_mb, require_blimp

from taskspace_core.models import LoadedModel, ModelSpec, load_model
from taskspace_core.packing import Row, encode, n_inputs, pair_row, plan_lanes
from taskspace_core.scoring import LANE_WIDTH, PairScorer, ScoringConfig
from taskspace_core.tasks import MinimalPair, load_blimp_dir

BATCH = 32  # the peers' batch size


def pair_rows(loaded: LoadedModel, pairs: Sequence[MinimalPair]) -> list[Row]:
    good = encode(loaded.tokenizer, loaded.bos_id, [p.good for p in pairs])
    bad = encode(loaded.tokenizer, loaded.bos_id, [p.bad for p in pairs])
    return [pair_row(g, b) for g, b in zip(good, bad, strict=True)]


def needed_flops(loaded: LoadedModel, pairs: Sequence[MinimalPair]) -> tuple[float, float]:
    """2 x params per token for the blocks on prefix+suffixes, LM head once per position a margin reads;
    and the same with each sentence's last token left out of the blocks (it predicts nothing)."""
    m = loaded.model
    emb = m.get_input_embeddings().weight
    head = m.get_output_embeddings().weight
    block = sum(p.numel() for p in m.parameters()) - emb.numel() - (0 if head is emb else head.numel())
    total = tight = 0.0
    for r in pair_rows(loaded, pairs):
        reads = len(r.good) + len(r.bad) - (bool(r.good) and bool(r.bad))  # both suffixes first read one position
        lm_head = 2 * head.numel() * reads
        total += 2 * block * len(r) + lm_head
        tight += 2 * block * n_inputs(r) + lm_head
    return total, tight


def minicons_system(loaded: LoadedModel, device: str) -> Callable[[Sequence[MinimalPair]], np.ndarray]:
    from minicons import scorer as mscorer

    sc = mscorer.IncrementalLMScorer(loaded.model, device=device, tokenizer=loaded.tokenizer)

    def run(pairs: Sequence[MinimalPair]) -> np.ndarray:
        out = []
        for s in range(0, len(pairs), BATCH):
            chunk = pairs[s : s + BATCH]
            g = sc.sequence_score([p.good for p in chunk], reduction=lambda x: x.sum(0).item(), bos_token=True)
            b = sc.sequence_score([p.bad for p in chunk], reduction=lambda x: x.sum(0).item(), bos_token=True)
            out.extend(np.array(g) - np.array(b))
        return np.array(out)

    return run


def lm_eval_system(loaded: LoadedModel) -> Callable[[Sequence[MinimalPair]], np.ndarray]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    logging.getLogger("lm_eval").setLevel(logging.ERROR)  # it warns that a model object skips its loading options
    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=BATCH, prefix_token_id=loaded.bos_id)

    def run(pairs: Sequence[MinimalPair]) -> np.ndarray:
        texts = [s for p in pairs for s in (p.good, p.bad)]
        reqs = [Instance("loglikelihood", {}, ("", t), i) for i, t in enumerate(texts)]
        ll = np.array([x[0] for x in lm.loglikelihood(reqs, disable_tqdm=True)])
        return ll[0::2] - ll[1::2]

    return run


def profile_taskspace(scorer: PairScorer, pairs: Sequence[MinimalPair]) -> None:
    """Where taskspace's time goes: torch ops by self CPU time, one run."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        scorer.score_pairs(pairs)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--per-task", type=int, default=15)
    ap.add_argument("--limit", type=int, default=0, help="score only the first N pairs (a quick look)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--profile", action="store_true", help="profile one taskspace run first")
    ap.add_argument("--only", default="", help="comma-separated subset of taskspace,lm-eval,minicons")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ts = load_blimp_dir(require_blimp())
    pairs = [p for t in ts for p in t.pairs[: args.per_task]]
    pairs = pairs[: args.limit] if args.limit else pairs
    loaded = load_model(ModelSpec(device=args.device))
    ours = PairScorer(loaded, ScoringConfig())
    systems: dict[str, Callable[[Sequence[MinimalPair]], np.ndarray]] = {
        "taskspace": lambda ps: ours.score_pairs(ps).margins,
        "lm-eval": lm_eval_system(loaded),
        "minicons": minicons_system(loaded, args.device),
    }
    if args.only:
        systems = {k: v for k, v in systems.items() if k in args.only.split(",")}
    print(f"model {loaded.spec.label} on {loaded.device}, {torch.get_num_threads()} threads, {len(pairs)} pairs")
    if args.profile:
        with torch.inference_mode():
            profile_taskspace(ours, pairs)
    names = list(systems)
    times: dict[str, list[float]] = {k: [] for k in names}
    margins: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
                t0 = time.perf_counter()
                margins[name] = systems[name](pairs)
                times[name].append(time.perf_counter() - t0)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()))
    rate = {k: len(pairs) / min(v) for k, v in times.items()}
    print(f"pairs/s (best of {args.rounds} rounds): " + "   ".join(f"{k} {v:.1f}" for k, v in rate.items()))
    print("accuracy: " + ", ".join(f"{k} {float((m > 0).mean()):.4f}" for k, m in margins.items()))
    for k in names[1:] if names[0] == "taskspace" else []:
        diff = np.abs(margins["taskspace"] - margins[k]).max()
        print(f"taskspace/{k}: {rate['taskspace'] / rate[k]:.2f}x, max |margin difference| {diff:.2e} nats")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    if "taskspace" in times:
        gflops = matmul_gflops()
        done = min(times["taskspace"]) * gflops * 1e9
        bound, tight = needed_flops(loaded, pairs)
        print(
            f"fp32 matmul: {gflops:.1f} GFLOP/s; prefix-shared FLOP-bound fraction reached: {bound / done:.2f} "
            f"({tight / done:.2f} of the bound without each sentence's last token)"
        )
        rows = pair_rows(loaded, pairs)
        lanes, widths = plan_lanes(rows, LANE_WIDTH)
        print(
            f"positions fed to the model: {sum(widths)} in {len(lanes)} lanes; pairs' rows hold {sum(map(len, rows))} "
            f"tokens ({sum(map(n_inputs, rows))} without each sentence's last): rows that begin alike share positions"
        )


if __name__ == "__main__":
    main()
