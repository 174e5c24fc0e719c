"""Count-sketches of ``g_task`` and the gradient cosines (G, METHODS s5) estimated from them.

Entry ``i`` of tensor ``t`` goes to bucket ``(a_t + i) mod D`` with sign ``s[(b_t + i) mod (D+1)]``;
see the package docstring of :mod:`taskspace_core.ftgd` for why this is unbiased and how exact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import torch

from taskspace_core.ftgd.config import SKETCH_SEED, FTGDError
from taskspace_core.ftgd.result import FTGDResult

_GRAM_BLOCK = 2**18  # sketch entries per float64 block of the Gram matrix


@lru_cache(maxsize=4)
def _sign_pattern(length: int, seed: int) -> torch.Tensor:
    """±1 pattern from splitmix64 of the position: portable and well mixed (uint64 wraps)."""
    with np.errstate(over="ignore"):
        z = np.arange(length, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    signs = 1.0 - 2.0 * (z >> np.uint64(63)).astype(np.float32)
    return torch.from_numpy(np.concatenate([signs, signs]))  # doubled: slices never wrap


def _name_offsets(name: str, dim: int, seed: int) -> tuple[int, int]:
    h = hashlib.blake2b(f"{seed}\x1f{name}".encode(), digest_size=16).digest()
    return int.from_bytes(h[:8], "little") % dim, int.from_bytes(h[8:], "little") % (dim + 1)


def gradient_sketch(grads: Mapping[str, torch.Tensor], dim: int = 2**22, seed: int = SKETCH_SEED) -> np.ndarray:
    """Count-sketch (float32, length ``dim``) of per-tensor gradients; see the module docstring."""
    pattern = _sign_pattern(dim + 1, seed)
    period = dim + 1
    acc = torch.zeros(2 * dim, dtype=torch.float32)
    for name, g in grads.items():
        flat = g.detach().reshape(-1).float().cpu()
        bucket0, sign0 = _name_offsets(name, dim, seed)
        for start in range(0, flat.numel(), dim):  # chunks of <= dim entries: slices never wrap twice
            chunk = flat[start : start + dim]
            n = chunk.numel()
            so, bo = (sign0 + start) % period, (bucket0 + start) % dim
            acc[bo : bo + n].addcmul_(chunk, pattern[so : so + n])
    return (acc[:dim] + acc[dim:]).numpy()


def sketch_cosine(a: FTGDResult, b: FTGDResult) -> float:
    """Estimated cosine of two tasks' ``g_task`` from their sketches."""
    return float(gradient_similarity([a, b])[0, 1])


def gradient_similarity(results: Sequence[FTGDResult]) -> np.ndarray:
    """G: estimated cosine matrix of ``g_task`` over the selectable parameters (diagonal 1)."""
    dims = {r.sketch.size for r in results}
    if len(dims) > 1:
        raise FTGDError(f"gradient sketches of different sizes {sorted(dims)}: tune all tasks with one config")
    if len({r.names for r in results}) > 1:
        raise FTGDError("gradient sketches cover different parameters: use one model and one config")
    n, dim = len(results), results[0].sketch.size if results else 0
    gram = np.zeros((n, n))
    for s in range(0, dim, _GRAM_BLOCK):  # float64 a block at a time: N whole float64 sketches were 32 MB each
        block = np.stack([r.sketch[s : s + _GRAM_BLOCK] for r in results]).astype(np.float64)
        gram += block @ block.T
    norms = np.sqrt(np.diag(gram))
    safe = np.where(norms > 0, norms, 1.0)
    G = gram / safe[:, None] / safe[None, :]
    G[norms == 0] = 0.0
    G[:, norms == 0] = 0.0
    np.fill_diagonal(G, 1.0)
    return np.clip(G, -1.0, 1.0)
