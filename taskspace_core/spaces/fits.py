"""Fit of a task space to a hypothesis space (METHODS s6): Spearman and within-minus-between with
Mantel permutation p-values, and cluster agreement (ARI)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import adjusted_rand_score

from taskspace_core.spaces.geometry import cluster_labels
from taskspace_core.spaces.hypotheses import HypothesisSpace, _name_mismatch
from taskspace_core.spaces.matrices import SpaceError, _as_square, _check_symmetric, _pearson, _upper

DEFAULT_PERMUTATIONS = 9_999
_PERM_BLOCK_ENTRIES = 400_000  # gathered entries per permutation block: ~3 MB of indices stays in cache


@dataclass(frozen=True)
class FitResult:
    """Fit of a task space to a hypothesis space on the upper triangle (i < j).

    p-values are one-sided (S more aligned with H than under shuffled task labels);
    NaN where a statistic is undefined (constant S or H, no same-label pair, no labels).
    ``ari_p`` is ARI's own permutation p (the labels shuffled against the fixed clusters);
    ``ari_note`` says why the ARI is NaN (a graded hypothesis, or a level that does not group:
    one label for all tasks or every task its own label), empty otherwise.
    """

    level: str
    n_tasks: int
    n_pairs_upper: int
    spearman: float
    mantel_p: float
    within_minus_between: float
    wmb_p: float
    ari: float
    ari_p: float
    n_permutations: int
    ari_note: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _align_to(S: np.ndarray | pd.DataFrame, task_names: Sequence[str]) -> np.ndarray:
    """Return S as an array in the order of task_names (DataFrames are reindexed by name)."""
    if isinstance(S, pd.DataFrame):
        rows = [str(r) for r in S.index]
        msg = _name_mismatch(rows, task_names, "rows") or _name_mismatch(
            [str(c) for c in S.columns], task_names, "columns"
        )
        if msg:
            raise SpaceError(msg.replace("The matrix", "The task space"))
        S = S.set_axis(rows, axis=0).set_axis([str(c) for c in S.columns], axis=1)
        S = S.loc[list(task_names), list(task_names)].to_numpy(dtype=float)
    A = _as_square(S, "task space")
    if A.shape[0] != len(task_names):
        raise SpaceError(f"The task space has {A.shape[0]} tasks but the hypothesis has {len(task_names)}.")
    return A


def _permutation_stats(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], n_permutations: int, rng: np.random.Generator
) -> list[tuple[Any, np.ndarray]]:
    """Observed and permuted values of ``sum_{i<j} s_ij * M[p(i), p(j)]`` for each (s, M) pair.

    ``s`` is an upper-triangle vector of the task space, ``M`` a symmetric N x N matrix
    (e.g. the ranks of H). Permuting task labels jointly on rows and columns only
    rearranges M's off-diagonal values, so any statistic that is an increasing affine
    function of this dot product can be tested with it. All pairs share the same
    permutations; they are drawn in blocks so memory stays bounded. ``s`` may also be a
    stack of K vectors (n_pairs x K, e.g. simulated spaces): the observed values are then
    a K-vector and the permuted ones n_permutations x K, each column tested as if alone.
    """
    n = pairs[0][1].shape[0]
    iu, ju = np.triu_indices(n, k=1)
    flat = [(sv, np.ascontiguousarray(M, dtype=float).ravel()) for sv, M in pairs]
    # observed through the same gather as the permutations, so ties compare like with like
    observed = [np.take(Mf, iu * n + ju) @ sv for sv, Mf in flat]
    observed = [float(o) if np.ndim(o) == 0 else o for o in observed]
    outs = [np.empty((n_permutations, *np.shape(sv)[1:])) for sv, _ in flat]
    base = np.arange(n, dtype=np.intp)
    chunk = max(16, _PERM_BLOCK_ENTRIES // max(1, iu.size))
    for start in range(0, n_permutations, chunk):
        m = min(chunk, n_permutations - start)
        perms = rng.permuted(np.broadcast_to(base, (m, n)), axis=1)
        idx = perms[:, iu] * n + perms[:, ju]  # flat indices into M: one take is cheaper than 2-D fancy indexing
        for (sv, Mf), out in zip(flat, outs, strict=True):
            out[start : start + m] = np.take(Mf, idx) @ sv
    return list(zip(observed, outs, strict=True))


def _p_value(observed: Any, permuted: np.ndarray) -> Any:
    """One-sided permutation p; with K observed values, ``permuted`` is n_perm x K and K p-values come back."""
    # tolerance: permutations that reproduce H exactly (shuffles within a label) must count as ties
    obs = np.asarray(observed, dtype=float)
    tol = 1e-9 * np.maximum(1.0, np.abs(obs))
    p = (1 + np.count_nonzero(permuted >= obs - tol, axis=0)) / (1 + permuted.shape[0])
    return float(p) if obs.ndim == 0 else p


def fit_hypothesis(
    S: np.ndarray | pd.DataFrame,
    H: HypothesisSpace,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> FitResult:
    """Fit a symmetric task space S to a hypothesis space H (METHODS.md s6).

    S is an array in the order of ``H.task_names`` or a DataFrame indexed by task name.
    Spearman rho and within-minus-between (binary H only) get a Mantel p-value from
    ``n_permutations`` joint row/column shuffles of H's task labels, drawn from
    ``np.random.default_rng(seed)``; p = (1 + #{perm >= observed}) / (1 + n_perm). The ARI
    of average-linkage clusters of 1 - S_scaled against H's labels needs ``H.labels``
    (see :func:`cluster_agreement`).
    """
    A = _align_to(S, H.task_names)
    _check_symmetric(A, "task space")
    n = A.shape[0]
    if n < 3:
        raise SpaceError("At least three tasks are needed to test a hypothesis (two have a single pair).")
    if n_permutations < 1:
        raise SpaceError("n_permutations must be at least 1.")
    A = (A + A.T) / 2.0
    s = _upper(A)
    h = _upper(np.asarray(H.matrix, dtype=float))
    nan = float("nan")

    # Spearman: ranks of H's upper values are fixed under permutation, so it is Pearson of
    # rank(s) with permuted ranks, an increasing affine map of their dot product.
    rs, rh = rankdata(s), rankdata(h)
    tests: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rho = nan
    if np.ptp(rs) > 0 and np.ptp(rh) > 0:
        rho = _pearson(rs, rh)
        RH = np.zeros((n, n))
        RH[np.triu_indices(n, k=1)] = rh
        tests["spearman"] = (rs - rs.mean(), RH + RH.T)

    # within-minus-between on a 0/1 hypothesis: with n1 same pairs fixed under permutation,
    # wmb = (s.h)(1/n1 + 1/n0) - sum(s)/n0, increasing in s.h.
    wmb = nan
    if H.is_binary:
        same = h == 1.0
        if same.any() and not same.all():
            wmb = float(s[same].mean() - s[~same].mean())
            Hm = np.asarray(H.matrix, dtype=float).copy()
            np.fill_diagonal(Hm, 0.0)
            tests["wmb"] = (s, Hm)

    p = {"spearman": nan, "wmb": nan}
    if tests:
        results = _permutation_stats(list(tests.values()), n_permutations, np.random.default_rng(seed))
        p.update({key: _p_value(obs, perm) for key, (obs, perm) in zip(tests, results, strict=True)})

    ari, ari_p, ari_note = cluster_agreement(A, H.labels, n_permutations, seed)

    return FitResult(
        level=H.name,
        n_tasks=n,
        n_pairs_upper=int(s.size),
        spearman=rho,
        mantel_p=p["spearman"],
        within_minus_between=wmb,
        wmb_p=p["wmb"],
        ari=ari,
        ari_p=ari_p,
        n_permutations=int(n_permutations),
        ari_note=ari_note,
    )


def ari_degenerate_reason(labels: Sequence[str] | None) -> str:
    """Why cluster agreement is undefined for these labels ('' when it is defined).

    A level with one label for all tasks, or a label per task (e.g. BLiMP's UID), groups
    nothing: the tree cut at that many clusters reproduces it trivially (ARI 1.0).
    """
    if labels is None:
        return "the hypothesis is graded, not a grouping of the tasks: no cluster agreement"
    k, n = len(set(labels)), len(labels)
    if k == 1:
        return "every task has the same label: there is no grouping to recover"
    if k == n:
        return "every task has its own label: there is no grouping to recover"
    return ""


def ari_many(clusters: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Adjusted Rand index of each row of ``clusters`` against the same row of ``labels`` (m x n ints,
    0-based), from contingency tables counted in one bincount; equals scikit-learn's per row."""
    c, lab = np.atleast_2d(clusters), np.atleast_2d(labels)
    m, n = np.broadcast_shapes(c.shape, lab.shape)
    c, lab = np.broadcast_to(c, (m, n)), np.broadcast_to(lab, (m, n))
    kc, kl = int(c.max()) + 1, int(lab.max()) + 1
    flat = (np.arange(m)[:, None] * kc + c) * kl + lab
    table = np.bincount(flat.ravel(), minlength=m * kc * kl).reshape(m, kc, kl).astype(float)

    def pairs(x: np.ndarray) -> np.ndarray:
        return x * (x - 1.0) / 2.0

    index = pairs(table).sum(axis=(1, 2))
    a, b = pairs(table.sum(axis=2)).sum(axis=1), pairs(table.sum(axis=1)).sum(axis=1)
    expected = a * b / pairs(float(n))
    top = (a + b) / 2.0
    return np.where(top == expected, 1.0, (index - expected) / np.where(top == expected, 1.0, top - expected))


def cluster_agreement(
    S: np.ndarray, labels: Sequence[str] | None, n_permutations: int, seed: int = 0
) -> tuple[float, float, str]:
    """ARI of average-linkage clusters of ``S`` (cut at the number of labels) against ``labels``,
    its permutation p (labels shuffled across tasks, clusters fixed; seeded apart from the
    Mantel test's stream) and, when it is NaN, the reason."""
    nan = float("nan")
    note = ari_degenerate_reason(labels)
    if note:
        return nan, nan, note
    assert labels is not None
    codes = np.unique(np.asarray(list(labels), dtype=object).astype(str), return_inverse=True)[1].ravel()
    clusters = np.unique(cluster_labels(S, int(codes.max()) + 1), return_inverse=True)[1].ravel()
    observed = float(adjusted_rand_score(codes, clusters))
    rng = np.random.default_rng([seed, 1])
    chunk = max(1, _PERM_BLOCK_ENTRIES // max(1, codes.size * 4))
    permuted = np.empty(n_permutations)
    for start in range(0, n_permutations, chunk):
        m = min(chunk, n_permutations - start)
        permuted[start : start + m] = ari_many(clusters, rng.permuted(np.broadcast_to(codes, (m, codes.size)), axis=1))
    return observed, _p_value(observed, permuted), ""
