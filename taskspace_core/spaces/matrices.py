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
    return _scale_stack(A[None])[0]


def _scale_stack(X: np.ndarray) -> np.ndarray:
    """:func:`scale_similarity` of each matrix of a finite stack (B x N x N)."""
    n = X.shape[-1]
    off = ~np.eye(n, dtype=bool)
    peak = np.abs(X[:, off]).max(axis=1, initial=0.0)
    out = X / np.where(peak > 1.0 + 1e-9, peak, 1.0)[:, None, None]
    out = np.clip(out, -1.0, 1.0)
    out[:, ~off] = 1.0
    return out


def distance_stack(Ss: np.ndarray) -> np.ndarray:
    """``D = 1 - S_scaled`` for a stack of symmetric task spaces (B x N x N, e.g. bootstrap replicates)."""
    D = 1.0 - _scale_stack(np.asarray(Ss, dtype=float))
    D[:, np.eye(D.shape[-1], dtype=bool)] = 0.0
    return D


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


def self_transfer_floor(T: np.ndarray) -> float:
    """Default noise floor for self-transfer: the mean |T[i, j]| off the diagonal.

    A self-transfer no larger than the typical transfer to another task is too small to
    divide by: ratios to it (``sym``, generalisation) would be noise magnified.
    """
    A = _as_square(T, "transfer matrix")
    off = A[~np.eye(A.shape[0], dtype=bool)]
    off = off[np.isfinite(off)]
    return float(np.abs(off).mean()) if off.size else 0.0


def usable_self_transfer(
    T: np.ndarray, self_floor: float | None = None, self_lower: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Which tasks' self-transfer ``T[i, i]`` is safe to divide by, and the floor used.

    Usable: finite and above ``self_floor`` (default :func:`self_transfer_floor`; must be
    >= 0, so a negative self-transfer is never usable) and, when the lower ends of the
    self-transfer intervals are given (``self_lower``, one per task), an interval above zero.
    """
    A = _as_square(T, "transfer matrix")
    floor = self_transfer_floor(A) if self_floor is None else float(self_floor)
    if not floor >= 0.0:
        raise SpaceError(f"The self-transfer floor must be zero or more; got {self_floor}.")
    d = np.diag(A)
    ok = np.isfinite(d) & (d > floor)
    if self_lower is not None:
        lower = np.asarray(self_lower, dtype=float).ravel()
        if lower.size != d.size:
            raise SpaceError(f"Got {lower.size} self-transfer intervals for {d.size} tasks.")
        ok &= lower > 0.0
    return ok, floor


def _profile_stack(X: np.ndarray, exclude_diagonal: bool) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of rows for a stack of matrices (B x N x N) and a mask of undefined pairs.

    With ``exclude_diagonal`` the pair (i, j) is correlated over the columns k not in {i, j},
    from running sums: removing both self-transfers from both rows keeps the null level at 0.
    """
    n = X.shape[-1]
    X = X - X.mean(axis=-1, keepdims=True)  # per-row shifts leave every correlation unchanged
    scale = max(1.0, float(np.abs(X).max(initial=0.0)))
    if not exclude_diagonal:
        norms = np.sqrt((X**2).sum(axis=-1))
        flat = norms <= 1e-12 * scale
        Z = X / np.where(flat, 1.0, norms)[..., None]
        Z[flat] = 0.0
        return Z @ np.swapaxes(Z, -1, -2), flat[..., :, None] | flat[..., None, :]
    Xt = np.swapaxes(X, -1, -2)
    d = np.diagonal(X, axis1=-2, axis2=-1)
    r, q = X.sum(axis=-1), (X**2).sum(axis=-1)
    sx = r[..., :, None] - d[..., :, None] - X  # row i without columns i and j
    sy = r[..., None, :] - Xt - d[..., None, :]  # row j without columns i and j
    sxx = q[..., :, None] - d[..., :, None] ** 2 - X**2
    syy = q[..., None, :] - Xt**2 - d[..., None, :] ** 2
    sxy = X @ Xt - d[..., :, None] * Xt - X * d[..., None, :]
    m = n - 2
    vx, vy = sxx - sx**2 / m, syy - sy**2 / m
    flat = (vx <= (1e-12 * scale) ** 2 * m) | (vy <= (1e-12 * scale) ** 2 * m)
    S = (sxy - sx * sy / m) / np.sqrt(np.where(flat, 1.0, vx * vy))
    return np.where(flat, 0.0, S), flat


def _sym_stack(X: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """``(R + R^T) / 2`` with ``R = T / diag(T)`` row-wise, for a stack (B x N x N); rows whose
    self-transfer is not usable are left out (only the other direction counts; 0 if neither)."""
    d = np.diagonal(X, axis1=-2, axis2=-1)
    ok = np.broadcast_to(usable, d.shape)
    R = np.where(ok[..., :, None], X / np.where(ok, d, 1.0)[..., :, None], np.nan)
    both = np.stack([R, np.swapaxes(R, -1, -2)])
    valid = np.isfinite(both)
    count = valid.sum(axis=0)
    return np.where(count > 0, np.where(valid, both, 0.0).sum(axis=0) / np.maximum(count, 1), 0.0)


ProfileDiagonal = Literal["include", "exclude"]
# The default: in the symmetrisation study (docs/METHODS.md) excluding the diagonal separated
# within- from between-category pairs best on BLiMP (exact and first-order) and the built-in suite.
PROFILE_DIAGONAL: ProfileDiagonal = "exclude"
EXCLUDE_MIN_TASKS = 4  # below this, a pair has fewer than 2 columns left to correlate


def resolve_profile_diagonal(n_tasks: int, profile_diagonal: ProfileDiagonal | None = None) -> ProfileDiagonal:
    """The profile-diagonal setting used for ``n_tasks`` tasks: an explicit choice as given; the
    default (None) is :data:`PROFILE_DIAGONAL`, falling back to ``include`` below 4 tasks."""
    if profile_diagonal is not None:
        if profile_diagonal not in ("include", "exclude"):
            raise SpaceError(f"Unknown profile_diagonal {profile_diagonal!r}; use 'include' or 'exclude'.")
        return profile_diagonal
    return PROFILE_DIAGONAL if n_tasks >= EXCLUDE_MIN_TASKS else "include"


def profile_label(how: str, n_tasks: int, profile_diagonal: ProfileDiagonal | None = None) -> str:
    """Export name of a symmetrised T, e.g. ``T_profile (diagonal exclude)`` or ``T_sym``."""
    if how != "profile":
        return f"T_{how}"
    return f"T_profile (diagonal {resolve_profile_diagonal(n_tasks, profile_diagonal)})"


def symmetrise_stack(
    Ts: np.ndarray,
    how: Literal["profile", "sym"] = "profile",
    profile_diagonal: ProfileDiagonal | None = None,
    usable: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`symmetrise` of a stack of transfer matrices (B x N x N, e.g. bootstrap replicates),
    without warnings. For ``sym``, ``usable`` (N bools, default all) fixes which rows may be normalised."""
    X = np.asarray(Ts, dtype=float)
    if X.ndim != 3 or X.shape[1] != X.shape[2]:
        raise SpaceError(f"Expected a stack of square transfer matrices (B x N x N); got shape {X.shape}.")
    n = X.shape[-1]
    if how == "profile":
        diagonal = resolve_profile_diagonal(n, profile_diagonal)
        if diagonal == "exclude" and n < EXCLUDE_MIN_TASKS:
            raise SpaceError("profile_diagonal='exclude' needs at least 4 tasks (2 columns left per pair).")
        S = np.clip(_profile_stack(X, diagonal == "exclude")[0], -1.0, 1.0)
    elif how == "sym":
        S = _sym_stack(X, np.ones(n, dtype=bool) if usable is None else np.asarray(usable, dtype=bool))
    else:
        raise SpaceError(f"Unknown symmetrisation {how!r}; use 'profile' or 'sym'.")
    S = (S + np.swapaxes(S, -1, -2)) / 2.0  # exact symmetry against round-off
    idx = np.arange(n)
    S[:, idx, idx] = 1.0
    return S


def symmetrise(
    T: np.ndarray,
    how: Literal["profile", "sym"] = "profile",
    *,
    profile_diagonal: ProfileDiagonal | None = None,
    self_floor: float | None = None,
    self_lower: np.ndarray | None = None,
) -> np.ndarray:
    """Symmetric similarity from a transfer matrix ``T[i, j]`` (effect on j of tuning on i).

    * ``how="profile"`` (default): Pearson correlation of the rows of T. With
      ``profile_diagonal="exclude"`` (the default from 4 tasks on) the pair (i, j) is
      correlated over the other tasks' columns only, so dominant self-transfers do not pull
      the null level to -1/(N-1); with ``"include"`` (the default below 4 tasks) the full
      rows are correlated. A pair with a
      constant row has no defined correlation: it is returned as 0 ("no evidence either
      way") and a :class:`SpaceWarning` names the rows.
    * ``how="sym"``: ``R = T / diag(T)`` row-wise, then ``(R + R^T) / 2``. A row whose
      self-transfer is not usable (see :func:`usable_self_transfer`: negative, at most
      ``self_floor`` -- default the mean |T| off the diagonal -- or with an interval
      ``self_lower`` not above zero) is not normalised: for its pairs only the other
      direction ``R[j, i]`` is used, 0 if neither direction is usable (warned).

    The diagonal of the result is 1. T must be finite (missing units raise SpaceError).
    """
    A = _as_square(T, "transfer matrix")
    if not np.all(np.isfinite(A)):
        bad = sorted({int(i) for i in np.argwhere(~np.isfinite(A))[:, 0]})
        raise SpaceError(
            f"The transfer matrix has missing values in rows {bad}; finish those units or drop those tasks."
        )
    usable = None
    profile_diagonal = resolve_profile_diagonal(A.shape[0], profile_diagonal)
    if how == "profile" and profile_diagonal == "include":
        flat = _profile_stack(A[None], False)[1][0].diagonal()
        if flat.any():
            warnings.warn(
                f"Rows {np.flatnonzero(flat).tolist()} of T are constant; their profile similarity is set to 0.",
                SpaceWarning,
                stacklevel=2,
            )
    elif how == "sym":
        usable, floor = usable_self_transfer(A, self_floor, self_lower)
        if not usable.all():
            warnings.warn(
                f"Tasks {np.flatnonzero(~usable).tolist()} have negative or near-zero self-transfer (not above "
                f"the noise floor {floor:.3g}{' or its interval includes zero' if self_lower is not None else ''}); "
                "only the other direction is used.",
                SpaceWarning,
                stacklevel=2,
            )
    S = symmetrise_stack(A[None], how, profile_diagonal, usable)[0]
    if how == "profile" and profile_diagonal == "exclude":
        undefined = _profile_stack(A[None], True)[1][0] & ~np.eye(A.shape[0], dtype=bool)
        if undefined.any():
            rows = sorted({int(i) for i in np.argwhere(undefined)[:, 0]})
            warnings.warn(
                f"Rows {rows} of T are constant off the diagonal; their profile similarity is set to 0.",
                SpaceWarning,
                stacklevel=2,
            )
    return S


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    den = math.sqrt(float(xc @ xc) * float(yc @ yc))
    return float(xc @ yc / den) if den > 0 else float("nan")
