"""Task-space matrices: validation, scaling to [-1, 1], distances, symmetric views of T (METHODS s4).

Conventions used throughout the package:

* A *task space* ``S`` is a symmetric N x N similarity matrix whose rows follow a list of
  task names. Statistics use the upper triangle (i < j) only; the diagonal is ignored.
* ``S_scaled`` (:func:`scale_similarity`) maps S to [-1, 1]: if every off-diagonal value
  already lies in [-1, 1] it is used as is, otherwise it is divided by the largest
  absolute off-diagonal value. The diagonal is set to 1. Distances are ``D = 1 - S_scaled``
  (so D is in [0, 2] with a zero diagonal).
* Bad input raises :class:`SpaceError` (a ``ValueError``) with a message a linguist can
  act on; recoverable oddities are returned as warning strings or emitted as
  :class:`SpaceWarning`.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np

_SYM_ATOL = 1e-8  # tolerance for "already symmetric"


class SpaceError(ValueError):
    """Bad task-space input, with a message a linguist can act on."""


class SpaceWarning(UserWarning):
    """A recoverable oddity in task-space input (e.g. a degenerate row)."""


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def _as_square(M: object, what: str) -> np.ndarray:
    """Return ``M`` as a float N x N array or raise a readable SpaceError."""
    try:
        A = np.asarray(M, dtype=float)
    except (TypeError, ValueError) as exc:
        raise SpaceError(f"The {what} must contain numbers only ({exc}).") from None
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise SpaceError(f"The {what} must be a square N x N matrix; got shape {A.shape}.")
    return A


def _upper(A: np.ndarray) -> np.ndarray:
    """Values of the strict upper triangle (i < j), row-major order."""
    return A[np.triu_indices(A.shape[0], k=1)]


def _check_symmetric(S: np.ndarray, what: str) -> None:
    off = ~np.eye(S.shape[0], dtype=bool)
    if not np.all(np.isfinite(S[off])):
        bad = int((~np.isfinite(S[off])).sum())
        raise SpaceError(f"The {what} has {bad} missing or infinite off-diagonal values.")
    if not np.allclose(S, S.T, atol=_SYM_ATOL, rtol=1e-6, equal_nan=True):
        raise SpaceError(
            f"The {what} is not symmetric. Build a symmetric view first, e.g. symmetrise(T, how='profile')."
        )


def scale_similarity(S: np.ndarray) -> np.ndarray:
    """Map a symmetric similarity matrix to [-1, 1] (see module docstring); diagonal set to 1.

    Off-diagonal values already in [-1, 1] are kept (clipped against round-off); otherwise
    the matrix is divided by its largest absolute off-diagonal value. An all-zero
    off-diagonal stays zero.
    """
    A = _as_square(S, "task space")
    n = A.shape[0]
    off = ~np.eye(n, dtype=bool)
    vals = A[off]
    if vals.size and not np.all(np.isfinite(vals)):
        raise SpaceError("The task space has missing or infinite off-diagonal values; cannot scale it.")
    out = A.copy()
    if vals.size:
        peak = float(np.max(np.abs(vals)))
        if peak > 1.0 + 1e-9:
            out = out / peak
    out = np.clip(out, -1.0, 1.0)
    np.fill_diagonal(out, 1.0)
    return out


def distance_matrix(S: np.ndarray) -> np.ndarray:
    """Distances ``D = 1 - S_scaled`` (zero diagonal, symmetric, values in [0, 2])."""
    A = _as_square(S, "task space")
    _check_symmetric(A, "task space")
    D = 1.0 - scale_similarity((A + A.T) / 2.0)
    np.fill_diagonal(D, 0.0)
    return D


# ---------------------------------------------------------------------------
# section 4: symmetric views of the transfer matrix
# ---------------------------------------------------------------------------


def symmetrise(T: np.ndarray, how: Literal["profile", "sym"] = "profile") -> np.ndarray:
    """Symmetric similarity from a transfer matrix ``T[i, j]`` (effect on j of tuning on i).

    * ``how="profile"`` (default): Pearson correlation of the rows of T (full rows, diagonal
      included). A constant row (e.g. all zeros) has no defined correlation: its
      off-diagonal similarities are returned as 0 ("no evidence either way") and a
      :class:`SpaceWarning` names it.
    * ``how="sym"``: ``R = T / diag(T)`` row-wise, then ``(R + R^T) / 2``. A row whose
      self-transfer ``T[i, i]`` is zero (|T_ii| < 1e-12) cannot be normalised: for its
      pairs only the other direction ``R[j, i]`` is used; if neither direction is usable
      the similarity is 0. A negative self-transfer flips that row's sign (warned).

    The diagonal of the result is 1. T must be finite (missing units raise SpaceError).
    """
    A = _as_square(T, "transfer matrix")
    if not np.all(np.isfinite(A)):
        bad = sorted({int(i) for i in np.argwhere(~np.isfinite(A))[:, 0]})
        raise SpaceError(
            f"The transfer matrix has missing values in rows {bad}; finish those units or drop those tasks."
        )
    n = A.shape[0]
    if how == "profile":
        centred = A - A.mean(axis=1, keepdims=True)
        norms = np.sqrt((centred**2).sum(axis=1))
        flat = norms <= 1e-12 * max(1.0, float(np.abs(A).max(initial=0.0)))
        if flat.any():
            warnings.warn(
                f"Rows {np.flatnonzero(flat).tolist()} of T are constant; their profile similarity is set to 0.",
                SpaceWarning,
                stacklevel=2,
            )
        safe = np.where(flat, 1.0, norms)
        Z = centred / safe[:, None]
        Z[flat] = 0.0
        S = np.clip(Z @ Z.T, -1.0, 1.0)
    elif how == "sym":
        diag = np.diag(A).copy()
        zero = np.abs(diag) < 1e-12
        if zero.any():
            warnings.warn(
                f"Tasks {np.flatnonzero(zero).tolist()} have zero self-transfer; only the other direction is used.",
                SpaceWarning,
                stacklevel=2,
            )
        if (diag < 0).any() and not zero[diag < 0].all():
            warnings.warn(
                f"Tasks {np.flatnonzero((diag < 0) & ~zero).tolist()} have negative self-transfer; "
                "normalising by it flips the sign of their rows.",
                SpaceWarning,
                stacklevel=2,
            )
        R = np.full_like(A, np.nan)
        R[~zero] = A[~zero] / diag[~zero, None]
        both = np.stack([R, R.T])
        valid = np.isfinite(both)
        count = valid.sum(axis=0)
        S = np.where(count > 0, np.where(valid, both, 0.0).sum(axis=0) / np.maximum(count, 1), 0.0)
    else:
        raise SpaceError(f"Unknown symmetrisation {how!r}; use 'profile' or 'sym'.")
    S = (S + S.T) / 2.0  # exact symmetry against round-off
    np.fill_diagonal(S, 1.0)
    assert S.shape == (n, n)
    return S


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    den = math.sqrt(float(xc @ xc) * float(yc @ yc))
    return float(xc @ yc / den) if den > 0 else float("nan")
