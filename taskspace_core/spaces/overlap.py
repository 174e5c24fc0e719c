"""Mask overlap (METHODS s5): packed-bit Jaccard, chance Jaccard per tensor or uniform, overlap lift."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from taskspace_core.spaces.matrices import SpaceError, _as_square

_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(a: np.ndarray) -> np.ndarray:
    """Per-element popcount: np.bitwise_count on numpy>=2, a per-byte lookup table otherwise."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(a)
    return _BYTE_POPCOUNT[a.view(np.uint8)]


def _pack_masks(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Stack masks as packed bits (n_masks x n_bytes, uint8).

    ``dtype=bool`` arrays are packed here; ``uint8`` arrays are taken to be the output of
    ``np.packbits`` already (padding bits must be 0, as packbits leaves them).
    """
    if len(masks) == 0:
        raise SpaceError("No masks given.")
    packed = []
    for i, m in enumerate(masks):
        a = np.asarray(m)
        if a.ndim != 1:
            raise SpaceError(f"Mask {i} must be 1-D (flattened over the selectable parameters); got shape {a.shape}.")
        if a.dtype == bool:
            a = np.packbits(a)
        elif a.dtype != np.uint8:
            raise SpaceError(f"Mask {i} has dtype {a.dtype}; give a bool array or np.packbits output (uint8).")
        packed.append(a)
    sizes = {p.size for p in packed}
    if len(sizes) != 1:
        raise SpaceError(
            f"Masks have different lengths ({sorted(sizes)} packed bytes); they must cover the same parameters."
        )
    return np.stack(packed)


def mask_intersections(masks: Sequence[np.ndarray], chunk_words: int = 1 << 15) -> np.ndarray:
    """``C[i, j] = |M_i & M_j|`` for all pairs (diagonal = mask sizes), via packed popcounts.

    Bits are processed as uint64 words in blocks of ``chunk_words`` (256 KB per mask), so
    a block of all masks stays in cache; ~1.5 s for 67 masks of 30M entries on one core.
    """
    P = _pack_masks(masks)
    n, nbytes = P.shape
    pad = (-nbytes) % 8  # zero padding never adds to a popcount
    W = np.pad(P, ((0, 0), (0, pad))).view(np.uint64)
    C = np.zeros((n, n), dtype=np.int64)
    for start in range(0, W.shape[1], chunk_words):
        block = W[:, start : start + chunk_words]
        for i in range(n):
            # AND row i with rows i..n-1 in one broadcast, then popcount and sum per row
            C[i, i:] += _popcount(block[i] & block[i:]).reshape(n - i, -1).sum(axis=1, dtype=np.int64)
    iu = np.triu_indices(n, k=1)
    C[(iu[1], iu[0])] = C[iu]
    return C


def jaccard_matrix(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Jaccard overlap ``|M_i & M_j| / |M_i | M_j|`` of boolean masks (bool or packed uint8).

    A pair of two empty masks has no union; its Jaccard is returned as 0.
    """
    C = mask_intersections(masks).astype(float)
    size = np.diag(C)
    union = size[:, None] + size[None, :] - C
    return np.divide(C, union, out=np.zeros_like(C), where=union > 0)


def tensor_counts(mask: np.ndarray, tensor_sizes: Sequence[int]) -> np.ndarray:
    """Count a flat mask's selected entries per tensor (tensors concatenated in order).

    ``mask`` is bool, or packed uint8 (then it is unpacked to ``sum(tensor_sizes)`` bits).
    """
    sizes = np.asarray(tensor_sizes, dtype=np.int64)
    total = int(sizes.sum())
    a = np.asarray(mask)
    if a.dtype == np.uint8:
        a = np.unpackbits(a, count=total).astype(bool)
    if a.dtype != bool or a.ndim != 1 or a.size != total:
        raise SpaceError(f"The mask must be a 1-D bool array of length {total} (sum of tensor sizes).")
    cum = np.concatenate([[0], np.cumsum(a, dtype=np.int64)])
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return cum[bounds[1:]] - cum[bounds[:-1]]


def _counts_table(
    counts_per_tensor: np.ndarray | Sequence[Mapping[str, int]],
    tensor_sizes: np.ndarray | Sequence[int] | Mapping[str, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise counts to an (N x n_tensors) int array and sizes to (n_tensors,)."""
    if isinstance(tensor_sizes, Mapping):
        names = list(tensor_sizes)
        sizes = np.array([tensor_sizes[t] for t in names], dtype=float)
        rows = []
        for i, row in enumerate(counts_per_tensor):
            if not isinstance(row, Mapping):
                raise SpaceError("With tensor sizes given by name, give each task's counts as {tensor name: count}.")
            unknown = set(row) - set(names)
            if unknown:
                raise SpaceError(f"Task {i}: counts for unknown tensors {sorted(unknown)[:5]}.")
            rows.append([row.get(t, 0) for t in names])
        K = np.array(rows, dtype=float).reshape(len(rows), len(names))
    else:
        sizes = np.asarray(tensor_sizes, dtype=float).ravel()
        K = np.asarray(counts_per_tensor, dtype=float)
        if K.ndim != 2 or K.shape[1] != sizes.size:
            raise SpaceError(f"Counts must be N x {sizes.size} (tasks x tensors); got shape {K.shape}.")
    if np.any(sizes <= 0):
        raise SpaceError("Every tensor size must be positive.")
    if np.any(K < 0) or np.any(sizes[None, :] < K):
        raise SpaceError("A mask count per tensor is negative or larger than the tensor.")
    return K, sizes


def chance_jaccard(
    counts_per_tensor: np.ndarray | Sequence[Mapping[str, int]],
    tensor_sizes: np.ndarray | Sequence[int] | Mapping[str, int],
    baseline: Literal["per_tensor", "uniform"] = "per_tensor",
    k: float | None = None,
) -> np.ndarray:
    """Expected Jaccard of two random masks (METHODS.md s5), N x N; diagonal NaN.

    * ``per_tensor``: keeps each mask's count per tensor, random positions within tensors:
      ``E|Mi&Mj| = sum_t k_it k_jt / n_t``, ``E|Mi|Mj| = |Mi| + |Mj| - E|Mi&Mj|``.
    * ``uniform``: ``k / (2 - k)`` when the mask fraction ``k`` is given; otherwise the same
      formula with all parameters pooled into one tensor (equals k/(2-k) when every mask
      holds the fraction k).

    Where the expected union is 0 (both masks empty) the chance level is NaN.
    """
    K, sizes = _counts_table(counts_per_tensor, tensor_sizes)
    n = K.shape[0]
    if baseline == "uniform" and k is not None:
        if not 0.0 < k < 1.0:
            raise SpaceError(f"The mask fraction k must be in (0, 1); got {k}.")
        chance = np.full((n, n), k / (2.0 - k))
    else:
        if baseline == "uniform":
            K, sizes = K.sum(axis=1, keepdims=True), np.array([sizes.sum()])
        elif baseline != "per_tensor":
            raise SpaceError(f"Unknown overlap baseline {baseline!r}; use 'per_tensor' or 'uniform'.")
        e_inter = (K / sizes[None, :]) @ K.T
        total = K.sum(axis=1)
        e_union = total[:, None] + total[None, :] - e_inter
        chance = np.divide(e_inter, e_union, out=np.full((n, n), np.nan), where=e_union > 0)
    np.fill_diagonal(chance, np.nan)
    return chance


def overlap_lift(
    J: np.ndarray,
    counts_per_tensor: np.ndarray | Sequence[Mapping[str, int]],
    tensor_sizes: np.ndarray | Sequence[int] | Mapping[str, int],
    baseline: Literal["per_tensor", "uniform"] = "per_tensor",
    k: float | None = None,
) -> np.ndarray:
    """Overlap lift ``J / chance Jaccard`` (see :func:`chance_jaccard`).

    ``counts_per_tensor`` is N x n_tensors (or one {tensor: count} mapping per task with
    ``tensor_sizes`` a {tensor: size} mapping), rows in the order of J. The diagonal
    (a mask with itself) is NaN; so is any pair whose chance level is 0 or undefined
    (an empty mask).
    """
    Jm = _as_square(J, "Jaccard matrix")
    chance = chance_jaccard(counts_per_tensor, tensor_sizes, baseline=baseline, k=k)
    if chance.shape != Jm.shape:
        raise SpaceError(f"J is {Jm.shape[0]} x {Jm.shape[0]} but counts are given for {chance.shape[0]} tasks.")
    lift = np.divide(Jm, chance, out=np.full_like(Jm, np.nan), where=np.isfinite(chance) & (chance > 0))
    np.fill_diagonal(lift, np.nan)
    return lift
