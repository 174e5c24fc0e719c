"""The paper's three series findings, tested (METHODS s6c).

(1) larger models generalise more, (2) parameter sharing between related phenomena grows
with pre-training, (3) task spaces stay mostly stable through training. Each is a per-model
statistic along a series (x = parameters or step) with:

* a 95% percentile bootstrap interval over **tasks**: every model of a series is resampled
  with the same task indices, so differences between models are paired;
* the **change** from the smallest to the largest x, with its paired interval and a two-sided
  bootstrap p (twice the smaller tail of the resampled changes around 0);
* a **trend** Spearman rho of the statistic against x, with a two-sided permutation p over the
  models' order (exact for up to 8 models; few models cannot reach small p: 3 give p >= 0.33).

Stability compares task spaces: Spearman between the upper triangles of consecutive
checkpoints and of each against the last, each with a one-sided Mantel p (joint row/column
shuffles of one space's tasks) and a bootstrap interval over tasks (pairs of a resampled task
with itself are left out).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import rankdata

from taskspace_core.spaces.fits import _p_value, _permutation_stats
from taskspace_core.spaces.matrices import SpaceError, _as_square, _pearson, _upper
from taskspace_core.spaces.series import _category_array, generalisation_parts

_EXACT_ORDERS = 8  # up to 8! = 40,320 orders the trend p is exact
_TREND_PERMUTATIONS = 20_000


@dataclass(frozen=True)
class Trend:
    """A statistic per model along a series, its paired change and its trend (module docstring)."""

    what: str
    x: tuple[float, ...]
    value: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    change: float
    change_low: float
    change_high: float
    p_change: float
    rho: float
    p_rho: float
    n_tasks: int
    interval: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def sentence(self, x_name: str) -> str:
        """One line for a report: the change with its interval and p, and the trend."""
        trend = (
            f"Spearman with {x_name} {self.rho:+.2f} (p = {self.p_rho:.3g}, {len(self.x)} models)"
            if np.isfinite(self.rho)
            else f"no trend test ({len(self.x)} models; it needs 3 with distinct values)"
        )
        return (
            f"{self.what}: {self.value[0]:.3g} at the smallest {x_name}, {self.value[-1]:.3g} at the largest; "
            f"change {self.change:+.3g} [{self.change_low:.3g}, {self.change_high:.3g}], p = {self.p_change:.3g}; "
            + trend
        )


def _bootstrap_p(reps: np.ndarray) -> float:
    """Two-sided bootstrap p that the resampled quantity's centre is 0 (finite replicates only)."""
    r = reps[np.isfinite(reps)]
    if not r.size:
        return float("nan")
    tail = min(np.count_nonzero(r <= 0), np.count_nonzero(r >= 0))
    return float(min(1.0, 2 * (1 + tail) / (1 + r.size)))


def trend_p(x: Sequence[float], y: Sequence[float], seed: int = 0) -> tuple[float, float]:
    """Spearman rho of ``y`` against ``x`` and its two-sided permutation p (NaN values left out)."""
    xv, yv = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(xv) & np.isfinite(yv)
    xv, yv = rankdata(xv[ok]), rankdata(yv[ok])
    k = xv.size
    if k < 3:
        return float("nan"), float("nan")
    rho = _pearson(xv, yv)
    if not np.isfinite(rho):
        return rho, float("nan")
    if k <= _EXACT_ORDERS:
        orders = np.array(list(itertools.permutations(range(k))))
    else:
        rng = np.random.default_rng(seed)
        orders = rng.permuted(np.broadcast_to(np.arange(k), (_TREND_PERMUTATIONS, k)), axis=1)
    xc, yc = xv - xv.mean(), yv - yv.mean()
    perm = (yc[orders] @ xc) / np.sqrt((xc @ xc) * (yc @ yc))
    hits = np.count_nonzero(np.abs(perm) >= abs(rho) - 1e-12)
    p = hits / len(orders) if k <= _EXACT_ORDERS else (1 + hits) / (1 + len(orders))
    return rho, float(p)


def _trend(
    what: str, x: Sequence[float], point: np.ndarray, reps: np.ndarray, n_tasks: int, level: float, seed: int
) -> Trend:
    """Assemble a Trend from point values (K,) and paired replicates (n_boot x K), models ordered by x."""
    order = np.argsort(np.asarray(x, dtype=float), kind="stable")
    xs, point, reps = np.asarray(x, dtype=float)[order], point[order], reps[:, order]
    q = [50 * (1 - level), 50 * (1 + level)]
    with np.errstate(all="ignore"):
        lo, hi = (np.nanpercentile(reps, qq, axis=0) for qq in q)
    d = reps[:, -1] - reps[:, 0]
    d_ok = d[np.isfinite(d)]
    d_lo, d_hi = (float(v) for v in np.percentile(d_ok, q)) if d_ok.size else (float("nan"),) * 2
    rho, p_rho = trend_p(xs, point, seed)
    return Trend(
        what=what,
        x=tuple(float(v) for v in xs),
        value=tuple(float(v) for v in point),
        low=tuple(float(v) for v in lo),
        high=tuple(float(v) for v in hi),
        change=float(point[-1] - point[0]),
        change_low=d_lo,
        change_high=d_hi,
        p_change=_bootstrap_p(d),
        rho=rho,
        p_rho=p_rho,
        n_tasks=n_tasks,
        interval=f"{level:.0%} percentile bootstrap over tasks, {reps.shape[0]} resamples shared by all models",
    )


def _task_resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _series(mats: Sequence[np.ndarray], x: Sequence[float], what: str) -> list[np.ndarray]:
    """The models' square matrices, checked: at least two, one x each, all over the same tasks."""
    if len(mats) != len(x) or len(mats) < 2:
        raise SpaceError("A trend needs at least two models, each with its x value.")
    out = [_as_square(M, what) for M in mats]
    if len({M.shape for M in out}) != 1:
        raise SpaceError(f"Every {what} of a series must cover the same tasks.")
    return out


def generalisation_trend(
    Ts: Sequence[np.ndarray],
    x: Sequence[float],
    categories: Sequence[object],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Trend:
    """Finding 1: generalisation (ratio of means, METHODS s6) of each model's T along ``x`` (e.g. parameters).

    The guard of :func:`generalisation` applies per model (tasks whose self-transfer is not
    above the noise floor are left out of that model); resampling is over all tasks.
    """
    parts = [generalisation_parts(T, categories) for T in _series(Ts, x, "transfer matrix")]
    n = parts[0][0].size
    idx = _task_resamples(n, n_boot, seed)

    def ratio(num: np.ndarray, den: np.ndarray, inc: np.ndarray, ix: np.ndarray) -> np.ndarray:
        w = inc[ix].astype(float)
        with np.errstate(all="ignore"):
            return (np.where(inc, num, 0.0)[ix] * w).sum(-1) / (np.where(inc, den, 0.0)[ix] * w).sum(-1)

    point = np.array([float(ratio(*p, np.arange(n))) for p in parts])
    reps = np.stack([ratio(*p, idx) for p in parts], axis=1)
    return _trend("generalisation", x, point, reps, n, level, seed)


def _category_codes(categories: Sequence[object], n: int) -> np.ndarray:
    """Integer code per task, -1 where it has no category."""
    cats = _category_array(categories, n)
    known = sorted({c for c in cats if c is not None})
    return np.array([-1 if c is None else known.index(c) for c in cats])


def _pair_stats(L: np.ndarray, codes: np.ndarray, ix: np.ndarray) -> float:
    """Mean lift within minus between categories over pairs of distinct resampled tasks ``ix``."""
    a, b = np.triu_indices(ix.size, k=1)
    i, j = ix[a], ix[b]
    vals = L[i, j]
    ok = (i != j) & (codes[i] >= 0) & (codes[j] >= 0) & np.isfinite(vals)
    same = codes[i] == codes[j]
    w, bt = vals[ok & same], vals[ok & ~same]
    return float(w.mean() - bt.mean()) if w.size and bt.size else float("nan")


def distributedness_trend(
    lifts: Sequence[np.ndarray],
    x: Sequence[float],
    categories: Sequence[object],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Trend:
    """Finding 2: mean overlap lift within minus between categories of each model along ``x`` (e.g. step)."""
    Ls = _series(lifts, x, "overlap-lift matrix")
    n = Ls[0].shape[0]
    codes = _category_codes(categories, n)
    idx = _task_resamples(n, n_boot, seed)
    point = np.array([_pair_stats(L, codes, np.arange(n)) for L in Ls])
    reps = np.array([[_pair_stats(L, codes, ix) for L in Ls] for ix in idx])
    return _trend("within - between lift", x, point, reps, n, level, seed)


@dataclass(frozen=True)
class Comparison:
    """Spearman between two task spaces' upper triangles, its interval over tasks and Mantel p."""

    rho: float
    low: float
    high: float
    p: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _spearman_pairs(A: np.ndarray, B: np.ndarray, ix: np.ndarray) -> float:
    a, b = np.triu_indices(ix.size, k=1)
    i, j = ix[a], ix[b]
    keep = i != j
    x, y = A[i[keep], j[keep]], B[i[keep], j[keep]]
    return _pearson(rankdata(x), rankdata(y)) if x.size >= 3 else float("nan")


def compare_spaces(
    A: np.ndarray, B: np.ndarray, *, n_boot: int = 1000, n_permutations: int = 999, seed: int = 0, level: float = 0.95
) -> Comparison:
    """Spearman of two symmetric task spaces over the same tasks, with a bootstrap interval and a Mantel p."""
    A, B = _as_square(A, "task space"), _as_square(B, "task space")
    if A.shape != B.shape or A.shape[0] < 3:
        raise SpaceError("Both task spaces must cover the same three or more tasks.")
    n = A.shape[0]
    rho = _spearman_pairs(A, B, np.arange(n))
    reps = np.array([_spearman_pairs(A, B, ix) for ix in _task_resamples(n, n_boot, seed)])
    ok = reps[np.isfinite(reps)]
    lo, hi = (float(v) for v in np.percentile(ok, [50 * (1 - level), 50 * (1 + level)])) if ok.size else (np.nan,) * 2
    # Mantel: Pearson of ranks is an increasing affine function of the dot product of A's centred
    # ranks with B's ranks, which a joint shuffle of B's tasks only rearranges
    ra = rankdata(_upper(A))
    RB = np.zeros((n, n))
    iu = np.triu_indices(n, k=1)
    RB[iu] = rankdata(_upper(B))
    RB = RB + RB.T
    ((obs, perm),) = _permutation_stats([(ra - ra.mean(), RB)], n_permutations, np.random.default_rng(seed))
    return Comparison(rho, lo, hi, float(_p_value(obs, perm)))


@dataclass(frozen=True)
class StabilityTest:
    """Finding 3 along ordered checkpoints ``x``: consecutive comparisons and each against the last."""

    x: tuple[float, ...]
    consecutive: tuple[Comparison, ...]
    against_last: tuple[Comparison, ...]
    mean_consecutive: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def sentence(self) -> str:
        sig = sum(c.p < 0.05 for c in self.consecutive)
        return (
            f"stability: mean Spearman between consecutive checkpoints {self.mean_consecutive:.2f} "
            f"({sig} of {len(self.consecutive)} with Mantel p < 0.05); first vs last "
            f"{self.against_last[0].rho:.2f} [{self.against_last[0].low:.2f}, {self.against_last[0].high:.2f}]"
        )


def stability_test(
    spaces: Sequence[np.ndarray], x: Sequence[float], *, n_boot: int = 1000, n_permutations: int = 999, seed: int = 0
) -> StabilityTest:
    """Stability of task spaces over the same tasks along ``x`` (sorted by x), every comparison tested."""
    if len(spaces) < 2 or len(spaces) != len(x):
        raise SpaceError("Stability needs at least two task spaces, each with its step.")
    order = np.argsort(np.asarray(x, dtype=float), kind="stable")
    mats = [_as_square(spaces[k], "task space") for k in order]
    kw = {"n_boot": n_boot, "n_permutations": n_permutations, "seed": seed}
    cons = tuple(compare_spaces(mats[t], mats[t + 1], **kw) for t in range(len(mats) - 1))
    last = tuple(compare_spaces(m, mats[-1], **kw) for m in mats[:-1])
    rhos = [c.rho for c in cons if np.isfinite(c.rho)]
    return StabilityTest(
        x=tuple(float(np.asarray(x, dtype=float)[k]) for k in order),
        consecutive=cons,
        against_last=last,
        mean_consecutive=float(np.mean(rhos)) if rhos else float("nan"),
    )
