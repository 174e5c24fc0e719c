"""Simulated per-pair margins with a known transfer matrix, for the statistics tests and benchmarks."""

from __future__ import annotations

import numpy as np

from taskspace_core.spaces import PairMargins


def planted_transfer(categories: str, within: float = 1.0, self_transfer: float = 5.0) -> np.ndarray:
    """True T: ``within`` between tasks of one category (one letter per task), 0 between, diagonal ``self_transfer``."""
    cats = np.array(list(categories))
    T = np.where(cats[:, None] == cats[None, :], within, 0.0)
    np.fill_diagonal(T, self_transfer)
    return T


def simulate_margins(T_true: np.ndarray, n_pairs: int, noise_sd: float, seed: int, base_sd: float = 2.0) -> PairMargins:
    """Base margins ~ N(0.5, base_sd) per eval pair; tuned-on-i margins = base + T_true[i, j] + N(0, noise_sd).

    So the mean over task j's pairs of (tuned - base) estimates T_true[i, j] with standard
    error noise_sd / sqrt(n_pairs).
    """
    rng = np.random.default_rng(seed)
    n = T_true.shape[0]
    base = rng.normal(0.5, base_sd, size=(n, n_pairs))
    tuned = base[None, :, :] + T_true[:, :, None] + rng.normal(0.0, noise_sd, size=(n, n, n_pairs))
    return PairMargins.from_arrays(base, tuned)
