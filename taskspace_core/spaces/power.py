"""Power of the Mantel test of the category hypothesis for a probing design (METHODS s6, "Design").

A design is (categories, paradigms per category, eval pairs, tune pairs). Its power is the
chance that the Spearman Mantel test of ``T_profile`` (or ``T_sym``) against the category
hypothesis reaches p <= alpha, when transfer follows the structure and noise measured in a
real run. Task spaces are simulated cell by cell from this model of a transfer matrix:

    T_hat[i, j] = mu + r_i + c_j + delta_k * same_k(i, j) + u_ij       (i != j, the truth)
                + a_j / sqrt(n_eval) + e_ij / sqrt(n_eval)              (eval-pair noise)
    T_hat[i, i] = s_i + (a_i + e_ii) / sqrt(n_eval)

``r``/``c`` are tuned-task and eval-task effects, ``u`` cell-level structure that no category
explains, ``delta_k`` the within- minus between-category transfer of category k (the effect;
drawn for each simulated category from the run's per-category estimates, since a category
structure is rarely uniform: one category that transfers strongly is not six), ``s_i`` a
self-transfer drawn from the run's, ``a_j`` the part of a pair's response shared by every
tuning (the same eval pairs score every row) and ``e_ij`` the rest; ``r``, ``c``, ``u``,
``a`` and ``e`` are normal with the SDs measured by :func:`noise_from_margins`. A cell mean
over n_eval pairs is exactly normal under this model, so no pair has to be drawn. The
simulated spaces go through the same symmetrisation (:func:`~.matrices.symmetrise_stack`)
and the same permutation test as :func:`~.fits.fit_hypothesis` (one shared set of seeded
permutations, so each simulated space gets the p-value ``fit_hypothesis`` would give it with
that seed).

Not modelled: tuning noise (another tune split would move ``u``; it needs the split-tuning
switch to be measured) and a change of FTGD steps at a fixed step-size budget (lr x steps),
which leaves the structure unchanged in the reference measurements (METHODS s5b).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
from scipy.stats import rankdata

from taskspace_core.spaces.fits import _p_value, _permutation_stats
from taskspace_core.spaces.matrices import ProfileDiagonal, SpaceError, symmetrise_stack
from taskspace_core.spaces.uncertainty import PairMargins

DEFAULT_SIMULATIONS = 400
POWER_PERMUTATIONS = 999  # p resolution 0.001 is ample against alpha = 0.05


@dataclass(frozen=True)
class Design:
    """A probing design: ``categories`` x ``per_category`` paradigms, pairs per task for tuning and evaluation."""

    categories: int
    per_category: int
    n_eval: int
    n_tune: int = 48

    def __post_init__(self) -> None:
        if self.categories < 2 or self.per_category < 2:
            raise SpaceError("A category test needs at least 2 categories of at least 2 paradigms each.")
        if self.n_eval < 2 or self.n_tune < 1:
            raise SpaceError("A design needs at least 2 eval pairs and 1 tune pair per task.")

    @property
    def n_tasks(self) -> int:
        return self.categories * self.per_category

    @property
    def labels(self) -> list[str]:
        return [f"c{k}" for k in range(self.categories) for _ in range(self.per_category)]

    def __str__(self) -> str:
        return f"{self.categories}x{self.per_category} tasks, {self.n_eval} eval / {self.n_tune} tune pairs"


@dataclass(frozen=True)
class NoiseModel:
    """Structure and noise of a transfer matrix (see the module docstring); SDs are per cell or per pair.

    ``effects``: the within- minus between-category transfer of each measured category (a
    simulated category draws one); ``self_transfer``: the measured T[i, i] (each task draws one).
    """

    mu: float
    effects: tuple[float, ...]
    self_transfer: tuple[float, ...]
    sd_row: float
    sd_col: float
    sd_cell: float
    pair_sd: float
    pair_shared_sd: float
    delta_se: float = float("nan")
    n_tasks: int = 0
    n_eval: int = 0

    @property
    def delta(self) -> float:
        """The mean within- minus between-category transfer over categories."""
        return float(np.mean(self.effects))

    def with_effect(self, factor: float) -> NoiseModel:
        """The same noise with every category's effect scaled by ``factor`` (0 = no structure)."""
        return replace(self, effects=tuple(float(e) * factor for e in self.effects))

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "delta": self.delta}


@dataclass(frozen=True)
class PowerResult:
    """Power of one design: the share of simulated spaces with Mantel p <= alpha, its Monte Carlo SE,
    and the mean Spearman of the simulated spaces with the category hypothesis."""

    design: Design
    power: float
    power_se: float
    mean_spearman: float
    alpha: float
    n_simulations: int
    n_permutations: int


def _categories(labels: Sequence[str]) -> np.ndarray:
    cats = np.asarray([str(x) for x in labels])
    if len(set(cats)) < 2 or len(set(cats)) == cats.size:
        raise SpaceError("The run's categories must group its tasks (some category with 2+ tasks, 2+ categories).")
    return cats[:, None] == cats[None, :]


def _two_way(D: np.ndarray) -> tuple[float, float]:
    """Pair (column) variance and residual variance of a tunings x pairs matrix of transfer differences."""
    k, p = D.shape
    resid = D - D.mean(axis=1, keepdims=True) - D.mean(axis=0, keepdims=True) + D.mean()
    var_e = float((resid**2).sum() / max(1, (k - 1) * (p - 1)))
    var_a = float(D.mean(axis=0).var(ddof=1)) - var_e / k
    return max(var_a, 0.0), var_e


def noise_from_margins(margins: PairMargins, categories: Sequence[str]) -> NoiseModel:
    """Measure the model of the module docstring from a run's per-pair base and tuned margins.

    Pair noise: per eval task j, the (tuned on i - base) differences of the off-diagonal tunings
    (rows) x eval pairs (columns) split into a pair effect shared by the tunings and a residual
    (two-way ANOVA), pooled over eval tasks. Structure: least squares of the off-diagonal cells
    of T on tuned-task and eval-task effects and one same-category indicator per category (its
    effect; ``delta_se`` is the standard error of their mean); each fitted spread has the share
    the pair noise explains removed.
    """
    n = margins.n_tasks
    same = _categories(categories)
    if same.shape[0] != n:
        raise SpaceError(f"Got {same.shape[0]} category labels for {n} tasks.")
    if n < 4:
        raise SpaceError("Measuring structure and noise needs at least 4 tasks.")
    var_a, var_e = [], []
    T = np.empty((n, n))
    for j in range(n):
        D = np.stack([margins.tuned[i][j] - margins.base[j] for i in range(n)])
        T[:, j] = D.mean(axis=1)
        a, e = _two_way(np.delete(D, j, axis=0))
        var_a.append(a)
        var_e.append(e)
    p = float(np.mean(margins.n_pairs))
    va, ve = float(np.mean(var_a)), float(np.mean(var_e))

    off = ~np.eye(n, dtype=bool)
    rows, cols = np.nonzero(off)
    cats = np.unique(np.asarray([str(x) for x in categories]), return_inverse=True)[1].ravel()
    grouped = [k for k in range(int(cats.max()) + 1) if (cats == k).sum() > 1]
    in_k = [((cats[rows] == k) & (cats[cols] == k)).astype(float) for k in grouped]
    X = np.column_stack([np.ones(rows.size), *in_k, np.eye(n)[rows][:, 1:], np.eye(n)[cols][:, 1:]])
    y = T[rows, cols]
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = max(1, y.size - X.shape[1])
    var_resid = float(resid @ resid / dof)
    K = len(grouped)
    cov = var_resid * np.linalg.pinv(X.T @ X)[1 : K + 1, 1 : K + 1]
    # effects as deviations from their mean (the first level is the reference of the dummies)
    r = np.concatenate([[0.0], coef[K + 1 : K + n]])
    c = np.concatenate([[0.0], coef[K + n :]])
    var_u = max(var_resid - ve / p, 0.0)
    share = (var_u + ve / p) / (n - 1)  # noise in a fitted effect: a mean of about n - 1 cells
    return NoiseModel(
        mu=float(y[~same[rows, cols]].mean()),
        effects=tuple(float(x) for x in coef[1 : K + 1]),
        self_transfer=tuple(float(x) for x in np.diag(T)),
        sd_row=float(np.sqrt(max(r.var(ddof=1) - share, 0.0))),
        sd_col=float(np.sqrt(max(c.var(ddof=1) - share - va / p, 0.0))),
        sd_cell=float(np.sqrt(var_u)),
        pair_sd=float(np.sqrt(ve)),
        pair_shared_sd=float(np.sqrt(va)),
        delta_se=float(np.sqrt(cov.sum()) / K),
        n_tasks=n,
        n_eval=int(round(p)),
    )


def simulate_transfer(noise: NoiseModel, design: Design, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` measured transfer matrices of ``design`` under ``noise`` (n x N x N)."""
    N = design.n_tasks
    same = _categories(design.labels)
    cat = np.repeat(np.arange(design.categories), design.per_category)
    effect = rng.choice(np.asarray(noise.effects, dtype=float), size=(n, design.categories))[:, cat]
    truth = (
        noise.mu
        + np.where(same[None], effect[:, :, None], 0.0)
        + rng.normal(0.0, noise.sd_row, (n, N, 1))
        + rng.normal(0.0, noise.sd_col, (n, 1, N))
        + rng.normal(0.0, noise.sd_cell, (n, N, N))
    )
    idx = np.arange(N)
    truth[:, idx, idx] = rng.choice(np.asarray(noise.self_transfer, dtype=float), size=(n, N))
    se = 1.0 / np.sqrt(design.n_eval)
    T = truth + rng.normal(0.0, noise.pair_shared_sd * se, (n, 1, N)) + rng.normal(0.0, noise.pair_sd * se, (n, N, N))
    return T


def mantel_p_values(
    S: np.ndarray, labels: Sequence[str], n_permutations: int = POWER_PERMUTATIONS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Spearman with the category hypothesis and its Mantel p for each space of a stack (B x N x N).

    The statistic and permutations are those of :func:`~.fits.fit_hypothesis`: with the same
    ``n_permutations`` and ``seed`` each p equals ``fit_hypothesis(S[b], H).mantel_p``.
    """
    same = _categories(labels)
    n = same.shape[0]
    iu = np.triu_indices(n, k=1)
    h = same[iu].astype(float)
    rs = rankdata(np.asarray(S, dtype=float)[:, iu[0], iu[1]], axis=1)
    rh = rankdata(h)
    RH = np.zeros((n, n))
    RH[iu] = rh
    xs, yh = rs - rs.mean(axis=1, keepdims=True), rh - rh.mean()
    den = np.sqrt((xs**2).sum(axis=1) * (yh @ yh))
    rho = np.divide(xs @ yh, den, out=np.full(den.shape, np.nan), where=den > 0)
    ((observed, permuted),) = _permutation_stats([(xs.T, RH + RH.T)], n_permutations, np.random.default_rng(seed))
    p = np.where(np.isfinite(rho), _p_value(observed, permuted), np.nan)
    return rho, p


def power(
    noise: NoiseModel,
    design: Design,
    alpha: float = 0.05,
    n_simulations: int = DEFAULT_SIMULATIONS,
    n_permutations: int = POWER_PERMUTATIONS,
    how: Literal["profile", "sym"] = "profile",
    profile_diagonal: ProfileDiagonal | None = None,
    seed: int = 0,
) -> PowerResult:
    """Power of the Spearman Mantel test of the category hypothesis for ``design`` under ``noise``."""
    if not 0.0 < alpha < 1.0 or n_simulations < 1:
        raise SpaceError("alpha must be in (0, 1) and n_simulations at least 1.")
    rng = np.random.default_rng([seed, design.categories, design.per_category, design.n_eval])
    T = simulate_transfer(noise, design, n_simulations, rng)
    S = symmetrise_stack(T, how, profile_diagonal)
    rho, p = mantel_p_values(S, design.labels, n_permutations, seed)
    hit = float(np.mean(np.nan_to_num(p, nan=1.0) <= alpha))
    return PowerResult(
        design,
        hit,
        float(np.sqrt(hit * (1.0 - hit) / n_simulations)),
        float(np.nanmean(rho)),
        alpha,
        n_simulations,
        n_permutations,
    )


@dataclass(frozen=True)
class UnitSeconds:
    """Seconds per unit of the cost model (2-core CPU): ``ftgd`` per tuning, ``score_pair`` per scored
    eval pair (base and transfer units), ``unit`` fixed overhead per scoring unit."""

    ftgd: float
    score_pair: float
    unit: float = 0.0


def design_seconds(design: Design, secs: UnitSeconds, n_models: int = 1) -> float:
    """Estimated wall time of a design: per model N base units, N tunings, N^2 transfer units."""
    N = design.n_tasks
    scoring = (N + N * N) * (secs.unit + secs.score_pair * design.n_eval)
    return float(n_models * (N * secs.ftgd + scoring))
