"""Training the sizes side by side: one process per size, each with its own few torch threads.

Why: on a small CPU one thread per size beats two threads on one size (measured on a 2-core
Xeon: l-small 3,500-3,750 tokens/s on one thread beside another size, 2,400-3,200 on two
threads alone), because a small model's matrices are too small to keep two threads busy.
Sizes are independent (each starts from the same seed and reads batch ``s`` as a function of
``s`` alone), so a size trained here is the one a sequential run trains, to float rounding of
the thread count; resume works per size as before.
"""

from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path

from taskspace_core.pretrain.config import Evaluate, Log, PretrainConfig, SizeSpec


def relative_cost(size: SizeSpec, vocab: int, context: int) -> float:
    """Training FLOPs per token up to a constant (matrices incl. the tied head, plus attention)."""
    d, n = size.n_embd, size.n_layer
    return 12 * n * d * d + vocab * d + 2 * n * context * d


def schedule(sizes: Sequence[SizeSpec], cfg: PretrainConfig) -> list[SizeSpec]:
    """Longest first, so the smaller sizes fill the other workers while the largest runs."""
    return sorted(sizes, key=lambda s: relative_cost(s, cfg.vocab_size, cfg.context), reverse=True)


def _train_one(
    corpus: Path, size: SizeSpec, cfg: PretrainConfig, out: Path, device: str, evaluate: Evaluate | None,
    threads: int, deterministic: bool,
) -> dict:  # fmt: skip
    """One size in a worker process (spawned: a fresh torch, no state shared with the parent)."""
    import torch

    from taskspace_core.pretrain.data import prepare_data
    from taskspace_core.pretrain.training import train_size

    torch.set_num_threads(threads)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    log: Log = functools.partial(print, flush=True)  # lines of all sizes interleave; each names its size
    tokenizer, data, meta = prepare_data(corpus, cfg, out, log)  # the parent built it: this loads it
    return train_size(size, tokenizer, data, meta, cfg, out, log, device=device, evaluate=evaluate)


def train_parallel(
    corpus: Path, sizes: Sequence[SizeSpec], cfg: PretrainConfig, out: Path, workers: int, threads: int,
    device: str = "cpu", evaluate: Evaluate | None = None, deterministic: bool = False, log: Log = print,
) -> None:  # fmt: skip
    """Train ``sizes`` in ``workers`` processes of ``threads`` torch threads each; the first failure
    stops what has not started and is raised (what finished is kept, and a rerun resumes the rest)."""
    order = schedule(sizes, cfg)
    log(f"training {len(order)} sizes in {workers} processes x {threads} thread(s): {', '.join(s.name for s in order)}")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [
            pool.submit(_train_one, Path(corpus), s, cfg, Path(out), str(device), evaluate, threads, deterministic)
            for s in order
        ]
        wait(futures, return_when=FIRST_EXCEPTION)
        for f in futures:
            if f.done() and f.exception() is not None:
                raise f.exception()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
