"""Where an added task lands in a task space (METHODS s6d): nearest neighbours, best category.

A linguist adds their own paradigm to a cached analysis; the runner computes only its
units, and the union space then says, for each added task x and each symmetric view S:

* :func:`nearest_neighbours`: the other tasks ranked by ``S[x, t]``, each with a bootstrap
  interval over eval pairs and the share of resamples in which it is x's nearest neighbour;
* :func:`best_category`: the category whose reference tasks have the highest mean
  similarity to x, its margin over the runner-up (with an interval), the bootstrap support
  (share of resamples with the same winner) and a permutation p (labels shuffled among the
  reference tasks, group sizes kept: how often a random grouping fits x as well).

Intervals need the replicate spaces of :func:`transfer_replicates` (from per-pair margins,
views derived from T only); without them every number is a point value and the interval
fields are NaN. Percentile intervals are centred on the point value, as in
:func:`~taskspace_core.spaces.uncertainty.bootstrap_fit` (a resampled space carries the
pairs' noise twice, which pulls similarities toward zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from taskspace_core.spaces.matrices import ProfileDiagonal, SpaceError, symmetrise_stack, usable_self_transfer
from taskspace_core.spaces.uncertainty import DEFAULT_BOOTSTRAP, PairMargins, bootstrap_transfer

DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class Neighbour:
    """Another task's similarity to the placed one; ``low``/``high``/``nearest_share`` are NaN without replicates."""

    task: str
    similarity: float
    low: float
    high: float
    nearest_share: float
    added: bool = False


@dataclass(frozen=True)
class CategoryFit:
    """The best-fitting category of a placed task (see the module docstring for each number)."""

    level: str
    category: str
    mean_similarity: float
    runner_up: str
    runner_up_similarity: float
    margin: float
    margin_low: float
    margin_high: float
    support: float  # share of bootstrap resamples with the same best category (NaN without replicates)
    p_value: float  # permutation p of the best mean similarity
    n_permutations: int
    scores: dict[str, float]  # mean similarity to each category's reference tasks


@dataclass(frozen=True)
class Placement:
    """Where one added task lands in one symmetric space; ``n_boot`` is 0 when there are no intervals."""

    task: str
    space: str
    neighbours: tuple[Neighbour, ...]
    category: CategoryFit | None
    n_boot: int
    note: str = ""


def added_tasks(reference: Sequence[str], union: Sequence[str]) -> list[str]:
    """Tasks of ``union`` not in ``reference``, in ``union`` order; raises unless ``union`` extends ``reference``."""
    missing = [t for t in reference if t not in set(union)]
    if missing:
        raise SpaceError(f"The extended analysis lacks tasks of the original: {', '.join(missing[:5])}.")
    ref = set(reference)
    return [t for t in union if t not in ref]


def transfer_replicates(
    margins: PairMargins,
    how: Literal["profile", "sym"],
    metric: Literal["mean_margin", "accuracy"] = "mean_margin",
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    profile_diagonal: ProfileDiagonal | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The point T from the margins and ``n_boot`` replicate spaces ``symmetrise(T*, how)`` (B x N x N).

    For ``sym`` the rows that may be normalised are fixed by the point T (default noise
    floor), as the view itself decides them, so every replicate uses the same convention.
    """
    boot = bootstrap_transfer(margins, metric=metric, n_boot=n_boot, seed=seed)
    usable = usable_self_transfer(boot.T.value)[0] if how == "sym" else None
    return boot.T.value, symmetrise_stack(boot.replicates, how, profile_diagonal, usable)


def _check(S: np.ndarray, names: Sequence[str], S_reps: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    A = np.asarray(S, dtype=float)
    n = len(names)
    if A.shape != (n, n):
        raise SpaceError(f"The task space is {A.shape} but {n} task names were given.")
    if len(set(names)) != n:
        raise SpaceError("Task names must be unique.")
    if S_reps is None:
        return A, None
    R = np.asarray(S_reps, dtype=float)
    if R.ndim != 3 or R.shape[1:] != (n, n) or R.shape[0] < 1:
        raise SpaceError(f"Replicate spaces must be B x {n} x {n}; got shape {R.shape}.")
    return A, R


def _centred(reps: np.ndarray, point: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ``reps`` (B x ...) shifted so that its median sits on ``point``."""
    lo, mid, hi = np.nanpercentile(reps, [50 * (1 - level), 50.0, 50 * (1 + level)], axis=0)
    return lo + (point - mid), hi + (point - mid)


def nearest_neighbours(
    S: np.ndarray,
    names: Sequence[str],
    task: str,
    S_reps: np.ndarray | None = None,
    added: Sequence[str] = (),
    level: float = DEFAULT_LEVEL,
) -> tuple[Neighbour, ...]:
    """Every other task ranked by similarity to ``task`` (most similar first), with intervals from ``S_reps``."""
    A, R = _check(S, names, S_reps)
    if task not in names:
        raise SpaceError(f"Task {task!r} is not in this space.")
    x = list(names).index(task)
    others = np.array([i for i in range(len(names)) if i != x], dtype=int)
    if others.size == 0:
        return ()
    sim = A[x, others]
    nan = np.full(others.size, np.nan)
    low, high, share = nan, nan, nan
    if R is not None:
        row = R[:, x, others]
        low, high = _centred(row, sim, level)
        share = np.bincount(np.nanargmax(row, axis=1), minlength=others.size) / R.shape[0]
    order = np.argsort(-sim, kind="stable")
    extra = set(added)
    return tuple(
        Neighbour(
            names[others[k]],
            float(sim[k]),
            float(low[k]),
            float(high[k]),
            float(share[k]),
            names[others[k]] in extra,
        )
        for k in order
    )


def _category_means(rows: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Mean of each row of ``rows`` (B x m) over the columns of each category code (codes B x m or m)."""
    b, m = rows.shape
    c = np.broadcast_to(codes, (b, m))
    flat = (c + k * np.arange(b)[:, None]).ravel()
    sums = np.bincount(flat, weights=rows.ravel(), minlength=b * k).reshape(b, k)
    counts = np.bincount(flat, minlength=b * k).reshape(b, k)
    return sums / counts


def _margin(means: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Mean of the ``best`` category minus the highest other mean, per row."""
    idx = np.arange(means.shape[0])
    rest = means.copy()
    rest[idx, best] = -np.inf
    return means[idx, best] - rest.max(axis=1)


def best_category(
    S: np.ndarray,
    names: Sequence[str],
    task: str,
    labels: Sequence[str],
    reference: Sequence[str],
    S_reps: np.ndarray | None = None,
    level_name: str = "category",
    n_permutations: int = 999,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> CategoryFit:
    """The category (``labels`` of all tasks, in ``names`` order) of the ``reference`` tasks that ``task`` fits best.

    Score of category c: mean ``S[task, t]`` over its reference tasks. Needs reference tasks
    in at least two categories; ``task`` itself is never a reference.
    """
    A, R = _check(S, names, S_reps)
    pos = {n: i for i, n in enumerate(names)}
    if task not in pos:
        raise SpaceError(f"Task {task!r} is not in this space.")
    if len(labels) != len(names):
        raise SpaceError(f"Got {len(labels)} labels for {len(names)} tasks.")
    unknown = [t for t in reference if t not in pos]
    if unknown:
        raise SpaceError(f"Reference tasks not in this space: {', '.join(unknown[:5])}.")
    ref = np.array([pos[t] for t in dict.fromkeys(reference) if t != task], dtype=int)
    cats, codes = np.unique(np.asarray(labels, dtype=str)[ref], return_inverse=True)
    if cats.size < 2:
        raise SpaceError(f"The reference tasks span {cats.size} {level_name} label(s); a best fit needs two or more.")
    k, x = cats.size, pos[task]
    means = _category_means(A[x, ref][None, :], codes, k)[0]
    best = int(np.argmax(means))
    order = np.argsort(-means, kind="stable")
    second = int(order[1] if order[0] == best else order[0])
    margin = float(means[best] - means[second])

    rng = np.random.default_rng(seed)
    perm_codes = rng.permuted(np.broadcast_to(codes, (n_permutations, codes.size)), axis=1)
    perm_best = _category_means(np.broadcast_to(A[x, ref], perm_codes.shape), perm_codes, k).max(axis=1)
    p = float((1 + np.sum(perm_best >= means[best] - 1e-12)) / (1 + n_permutations))

    lo = hi = support = float("nan")
    if R is not None:
        rep_means = _category_means(R[:, x, ref], codes, k)
        support = float(np.mean(np.argmax(rep_means, axis=1) == best))
        rep_margin = _margin(rep_means, np.full(R.shape[0], best))
        lo_a, hi_a = _centred(rep_margin, np.asarray(margin), level)
        lo, hi = float(lo_a), float(hi_a)
    return CategoryFit(
        level_name,
        str(cats[best]),
        float(means[best]),
        str(cats[second]),
        float(means[second]),
        margin,
        lo,
        hi,
        support,
        p,
        n_permutations,
        {str(c): float(v) for c, v in zip(cats, means, strict=True)},
    )


def place_tasks(
    S: np.ndarray,
    names: Sequence[str],
    new_tasks: Sequence[str],
    labels: Sequence[str],
    space: str,
    S_reps: np.ndarray | None = None,
    level_name: str = "category",
    n_permutations: int = 999,
    seed: int = 0,
) -> list[Placement]:
    """Neighbours and best category of each of ``new_tasks`` in one space; the other tasks are the reference.

    A task set whose reference tasks span fewer than two labels still gets its neighbours;
    its ``category`` is None and ``note`` says why.
    """
    new = list(dict.fromkeys(new_tasks))
    reference = [t for t in names if t not in set(new)]
    if not reference:
        raise SpaceError("Every task of this space is an added one; there is nothing to place them against.")
    out = []
    for t in new:
        note, fit = "", None
        try:
            fit = best_category(S, names, t, labels, reference, S_reps, level_name, n_permutations, seed)
        except SpaceError as exc:
            note = str(exc)
        nn = nearest_neighbours(S, names, t, S_reps, added=new)
        n_boot = 0 if S_reps is None else int(np.asarray(S_reps).shape[0])
        out.append(Placement(t, space, nn, fit, n_boot, note))
    return out
