"""Statistics over tasks and series (METHODS s6): generalisation, distributedness, stability."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import rankdata

from taskspace_core.spaces.hypotheses import _is_missing_label
from taskspace_core.spaces.matrices import SpaceError, _as_square, _pearson, _upper


def _category_array(categories: Sequence[object], n: int) -> np.ndarray:
    cats = list(categories)
    if len(cats) != n:
        raise SpaceError(f"Got {len(cats)} categories for {n} tasks.")
    return np.array([None if _is_missing_label(c) else str(c) for c in cats], dtype=object)


def generalisation_scores(T: np.ndarray, categories: Sequence[object]) -> np.ndarray:
    """Per task i: mean ``T[i, j]`` over the other tasks j of i's category, divided by ``T[i, i]``.

    NaN where i has no category-mates, no category, or zero self-transfer.
    """
    A = _as_square(T, "transfer matrix")
    n = A.shape[0]
    cats = _category_array(categories, n)
    out = np.full(n, np.nan)
    for i in range(n):
        if cats[i] is None:
            continue
        mates = [j for j in range(n) if j != i and cats[j] == cats[i]]
        if mates and A[i, i] != 0 and np.isfinite(A[i, i]):
            out[i] = float(np.mean(A[i, mates]) / A[i, i])
    return out


def model_generalisation(T: np.ndarray, categories: Sequence[object]) -> float:
    """A model's generalisation: nanmean of :func:`generalisation_scores` (NaN if none defined)."""
    g = generalisation_scores(T, categories)
    return float(np.nanmean(g)) if np.isfinite(g).any() else float("nan")


@dataclass(frozen=True)
class Distributedness:
    """Mean overlap lift within vs between categories (upper-triangle pairs)."""

    within: float
    between: float
    difference: float
    n_within: int
    n_between: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def distributedness(lift: np.ndarray, categories: Sequence[object]) -> Distributedness:
    """Mean overlap lift over same-category pairs, over different-category pairs, and within - between.

    Pairs with an undefined lift (NaN) or a task without category are left out.
    """
    L = _as_square(lift, "overlap-lift matrix")
    n = L.shape[0]
    cats = _category_array(categories, n)
    iu, ju = np.triu_indices(n, k=1)
    vals = L[iu, ju]
    known = np.array([cats[i] is not None and cats[j] is not None for i, j in zip(iu, ju, strict=True)], dtype=bool)
    same = np.array([cats[i] == cats[j] for i, j in zip(iu, ju, strict=True)], dtype=bool) & known
    ok = np.isfinite(vals) & known
    w, b = vals[ok & same], vals[ok & ~same]
    within = float(w.mean()) if w.size else float("nan")
    between = float(b.mean()) if b.size else float("nan")
    return Distributedness(within, between, within - between, int(w.size), int(b.size))


@dataclass(frozen=True)
class Stability:
    """Spearman of upper triangles: consecutive checkpoints (K-1 values), and each vs the last (K values)."""

    consecutive: tuple[float, ...]
    against_last: tuple[float, ...]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def stability(spaces: Sequence[np.ndarray]) -> Stability:
    """Stability of a series of task spaces over the same tasks (ordered, e.g. by checkpoint)."""
    if len(spaces) < 2:
        raise SpaceError("Stability needs at least two task spaces.")
    mats = [_as_square(S, "task space") for S in spaces]
    if len({m.shape for m in mats}) != 1:
        raise SpaceError("All task spaces must cover the same tasks (same size).")
    ranks = [rankdata(_upper(m)) for m in mats]
    consecutive = tuple(_pearson(ranks[t], ranks[t + 1]) for t in range(len(mats) - 1))
    against_last = tuple(_pearson(r, ranks[-1]) for r in ranks)
    return Stability(consecutive, against_last)
