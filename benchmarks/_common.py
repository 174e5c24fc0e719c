"""Shared pieces of the benchmark scripts (not a test module)."""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_BLIMP = ROOT.parent / "shared" / "blimp"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_gflops(n: int = 1024, k: int = 576, m: int = 1536, seconds: float = 2.0) -> float:
    """fp32 matmul throughput of this machine, measured now (shapes like a small LM's MLP)."""
    a, b = torch.randn(n, k), torch.randn(k, m)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n * k * m * reps / (time.perf_counter() - t0) / 1e9


def require_blimp() -> Path:
    if not SHARED_BLIMP.is_dir():
        sys.exit(f"BLiMP files not found at {SHARED_BLIMP}; this benchmark needs ../shared/blimp")
    return SHARED_BLIMP


def save_tiny_model(directory: Path) -> Path:
    """A random-init tiny Llama (tests/tiny_runs.py) saved once in ``directory``, for quick runs of a benchmark."""
    if not (directory / "config.json").exists():
        from tests.tiny_runs import save_model

        save_model(directory, seed=5)
        # rotary positions: a longer window needs no new weights, and real sentences spell out to many tokens
        config = directory / "config.json"
        config.write_text(config.read_text().replace('"max_position_embeddings": 64', '"max_position_embeddings": 256'))
    return directory
