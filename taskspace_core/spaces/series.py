"""Statistics over tasks and series (METHODS s6): generalisation, distributedness, stability."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import rankdata

from taskspace_core.spaces.hypotheses import _is_missing_label
from taskspace_core.spaces.matrices import SpaceError, _as_square, _pearson, _upper, usable_self_transfer


def _category_array(categories: Sequence[object], n: int) -> np.ndarray:
    cats = list(categories)
    if len(cats) != n:
        raise SpaceError(f"Got {len(cats)} categories for {n} tasks.")
    return np.array([None if _is_missing_label(c) else str(c) for c in cats], dtype=object)


GENERALISATION_AGGREGATE = (
    "ratio of means over included tasks: mean over tasks of the mean transfer to category-mates, "
    "divided by the mean over the same tasks of self-transfer"
)


@dataclass(frozen=True)
class Generalisation:
    """A model's generalisation to overarching concepts, guarded and robust (METHODS s6).

    ``value`` is the ratio of means over the included tasks (see ``aggregate``), with a
    percentile bootstrap interval over tasks (``low``, ``high``; see ``interval``).
    ``per_task`` is mean same-category transfer / self-transfer, NaN for a task left out.
    A task is left out when its self-transfer is not above ``noise_floor`` or its interval
    includes zero (``n_excluded``, indices in ``excluded``), or when it has no category-mates
    (``n_without_mates``).
    """

    value: float
    low: float
    high: float
    per_task: tuple[float, ...]
    n_included: int
    n_excluded: int
    n_without_mates: int
    excluded: tuple[int, ...]
    noise_floor: float
    aggregate: str = GENERALISATION_AGGREGATE
    interval: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def generalisation(
    T: np.ndarray,
    categories: Sequence[object],
    *,
    self_lower: np.ndarray | None = None,
    noise_floor: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Generalisation:
    """Generalisation of one model from its transfer matrix ``T`` and the tasks' categories.

    ``noise_floor`` defaults to the mean |T| off the diagonal (:func:`self_transfer_floor`);
    ``self_lower`` are the lower ends of the self-transfer intervals (e.g. from
    ``uncertainty.bootstrap_transfer``), when known. The interval resamples the included
    tasks ``n_boot`` times (seeded).
    """
    A = _as_square(T, "transfer matrix")
    num, _, inc, has_mates, floor = _parts(A, categories, noise_floor, self_lower)
    left_out = has_mates & ~inc  # has category-mates but no usable self-transfer
    per_task = np.where(inc, num / np.where(inc, np.diag(A), 1.0), np.nan)
    k = int(inc.sum())
    value = low = high = float("nan")
    if k:
        nums, dens = num[inc], np.diag(A)[inc]
        value = float(nums.mean() / dens.mean())
        idx = np.random.default_rng(seed).integers(0, k, size=(n_boot, k))
        boot = nums[idx].mean(axis=1) / dens[idx].mean(axis=1)
        low, high = (float(x) for x in np.percentile(boot, [50 * (1 - level), 50 * (1 + level)]))
    return Generalisation(
        value=value,
        low=low,
        high=high,
        per_task=tuple(float(x) for x in per_task),
        n_included=k,
        n_excluded=int(left_out.sum()),
        n_without_mates=int((~has_mates).sum()),
        excluded=tuple(int(i) for i in np.flatnonzero(left_out)),
        noise_floor=floor,
        interval=f"{level:.0%} percentile bootstrap over the {k} included tasks ({n_boot} resamples, seed {seed})",
    )


def _parts(
    A: np.ndarray, categories: Sequence[object], noise_floor: float | None, self_lower: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    n = A.shape[0]
    cats = _category_array(categories, n)
    usable, floor = usable_self_transfer(A, noise_floor, self_lower)
    mates = [[j for j in range(n) if j != i and cats[i] is not None and cats[j] == cats[i]] for i in range(n)]
    has_mates = np.array([bool(m) for m in mates])
    num = np.array([float(np.mean(A[i, m])) if m else np.nan for i, m in enumerate(mates)])
    return num, np.diag(A).copy(), has_mates & usable, has_mates, floor


def generalisation_parts(
    T: np.ndarray,
    categories: Sequence[object],
    *,
    self_lower: np.ndarray | None = None,
    noise_floor: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per task: mean transfer to category-mates, self-transfer, and whether the task is included
    (it has mates and a usable self-transfer, as in :func:`generalisation`)."""
    num, den, inc, _, _ = _parts(_as_square(T, "transfer matrix"), categories, noise_floor, self_lower)
    return num, den, inc


def generalisation_scores(
    T: np.ndarray,
    categories: Sequence[object],
    *,
    self_lower: np.ndarray | None = None,
    noise_floor: float | None = None,
) -> np.ndarray:
    """Per task i: mean ``T[i, j]`` over the other tasks j of i's category, divided by ``T[i, i]``.

    NaN where i has no category-mates or no category, or where its self-transfer is not
    safe to divide by (see :func:`generalisation`).
    """
    return np.array(generalisation(T, categories, self_lower=self_lower, noise_floor=noise_floor, n_boot=1).per_task)


def model_generalisation(
    T: np.ndarray,
    categories: Sequence[object],
    *,
    self_lower: np.ndarray | None = None,
    noise_floor: float | None = None,
) -> float:
    """A model's generalisation: the ratio of means of :func:`generalisation` (NaN if no task qualifies)."""
    return generalisation(T, categories, self_lower=self_lower, noise_floor=noise_floor, n_boot=1).value


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
