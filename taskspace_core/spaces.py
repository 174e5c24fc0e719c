"""Task spaces: symmetrisation, overlap, hypothesis spaces, statistics, embeddings, trees.

Implements METHODS.md sections 4 (symmetric views of the transfer matrix T), 5 (mask
Jaccard and overlap lift), 6 (hypothesis spaces and fit statistics) and 7 (MDS/UMAP
layouts, Procrustes alignment, dendrograms). Pure numpy/scipy/scikit-learn; umap-learn
is imported lazily because its import is slow (numba). No torch, no Streamlit.

Conventions used throughout:

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

import inspect
import io
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, leaves_list, linkage, optimal_leaf_ordering
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.distance import squareform
from scipy.stats import rankdata
from sklearn.metrics import adjusted_rand_score

DEFAULT_PERMUTATIONS = 9_999
_SYM_ATOL = 1e-8  # tolerance for "already symmetric"
_PERM_BLOCK_ENTRIES = 400_000  # gathered entries per permutation block: ~3 MB of indices stays in cache


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


# ---------------------------------------------------------------------------
# section 5: mask overlap
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# section 6: hypothesis spaces
# ---------------------------------------------------------------------------


def _is_missing_label(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or (isinstance(x, str) and not x.strip())


@dataclass(frozen=True, eq=False)
class HypothesisSpace:
    """A hypothesis about which tasks are alike: an N x N matrix over named tasks.

    ``matrix`` is read-only; higher = more alike. Built from labels it is 1 for same label,
    0 otherwise (diagonal 1). ``labels`` is set when the space is a partition (built from
    labels, or an uploaded 0/1 matrix whose 1s form groups); clustering agreement needs it.
    """

    name: str
    task_names: tuple[str, ...]
    matrix: np.ndarray = field(repr=False)
    labels: tuple[str, ...] | None = None

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)

    @property
    def is_binary(self) -> bool:
        """True when every off-diagonal entry is 0 or 1 (a same/different hypothesis)."""
        return bool(np.isin(_upper(self.matrix), (0.0, 1.0)).all())

    @classmethod
    def from_labels(
        cls, name: str, task_names: Sequence[str], labels: Sequence[object] | Mapping[str, object]
    ) -> HypothesisSpace:
        """``H[i, j] = 1`` iff tasks i and j share the label of level ``name`` (e.g. 'category')."""
        names = _check_task_names(task_names)
        if isinstance(labels, Mapping):
            absent = [t for t in names if t not in labels]
            if absent:
                raise SpaceError(f"No '{name}' label for tasks: {', '.join(absent)}.")
            labs = [labels[t] for t in names]
        else:
            labs = list(labels)
            if len(labs) != len(names):
                raise SpaceError(f"Got {len(labs)} '{name}' labels for {len(names)} tasks.")
        missing = [t for t, lab in zip(names, labs, strict=True) if _is_missing_label(lab)]
        if missing:
            raise SpaceError(
                f"These tasks have no '{name}' label: {', '.join(missing)}. Give them one or leave them out."
            )
        str_labels = tuple(str(lab) for lab in labs)
        arr = np.array(str_labels, dtype=object)
        H = (arr[:, None] == arr[None, :]).astype(float)
        H.setflags(write=False)
        return cls(name=name, task_names=names, matrix=H, labels=str_labels)

    @classmethod
    def from_matrix(
        cls,
        data: pd.DataFrame | str | Path | io.IOBase,
        task_names: Sequence[str],
        name: str = "uploaded",
    ) -> tuple[HypothesisSpace, list[str]]:
        """Validate an uploaded N x N hypothesis matrix; return the space and warnings.

        ``data`` is a DataFrame (index = row names, columns = column names) or a CSV path or
        file object whose first column holds the row names. Rows and columns must both name
        exactly the given tasks (any order; reordered to ``task_names``). Values must be
        numbers; higher = more alike. An asymmetric matrix is replaced by (H + H^T)/2 with a
        warning. The diagonal is ignored (stored as NaN).
        """
        names = _check_task_names(task_names)
        warn: list[str] = []
        if isinstance(data, pd.DataFrame):
            df = data.copy()
        else:
            try:
                df = pd.read_csv(data, index_col=0)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
                raise SpaceError(f"Could not read the hypothesis matrix as CSV: {exc}") from None
        if df.shape[0] == 0 or df.shape[1] == 0:
            raise SpaceError("The hypothesis matrix is empty.")
        if df.shape[0] != df.shape[1]:
            raise SpaceError(
                f"The hypothesis matrix has {df.shape[0]} rows and {df.shape[1]} columns; it must be square "
                "(one row and one column per task, with task names in the first row and first column)."
            )
        rows = [str(r) for r in df.index]
        cols = [str(c) for c in df.columns]
        for where, lst in (("row", rows), ("column", cols)):
            dup = sorted({x for x in lst if lst.count(x) > 1})
            if dup:
                raise SpaceError(f"These {where} names appear more than once: {', '.join(dup)}.")
        if set(rows) == set(cols):  # one message when rows and columns share the same problem
            problems = [_name_mismatch(rows, names, "rows and columns")]
        else:
            problems = [_name_mismatch(rows, names, "rows"), _name_mismatch(cols, names, "columns")]
        if any(problems):
            raise SpaceError(" ".join(p for p in problems if p))
        df.index, df.columns = rows, cols
        df = df.loc[list(names), list(names)]
        values = np.array(df.apply(pd.to_numeric, errors="coerce"), dtype=float)  # own writable copy
        bad = [
            (names[i], names[j], df.iat[i, j]) for i, j in zip(*np.nonzero(~np.isfinite(values)), strict=True) if i != j
        ]
        if bad:
            shown = "; ".join(f"row '{r}', column '{c}': {v!r}" for r, c, v in bad[:5])
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            raise SpaceError(f"The hypothesis matrix must hold numbers only. Not a number: {shown}{more}.")
        np.fill_diagonal(values, np.nan)
        diff = np.abs(values - values.T)
        if np.nanmax(diff, initial=0.0) > _SYM_ATOL:
            i, j = np.unravel_index(np.nanargmax(diff), diff.shape)
            warn.append(
                f"The hypothesis matrix was not symmetric (largest difference {diff[i, j]:.3g}, between "
                f"'{names[i]}' and '{names[j]}'); it was replaced by the average of both directions."
            )
            values = (values + values.T) / 2.0
        off = values[~np.eye(len(names), dtype=bool)]
        if off.size and np.ptp(off) == 0:
            warn.append("Every pair has the same hypothesis value; no statistic can be computed against it.")
        labels = _labels_from_binary(values, names)
        values.setflags(write=False)
        return cls(name=name, task_names=names, matrix=values, labels=labels), warn


def _check_task_names(task_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(str(t) for t in task_names)
    if len(names) < 2:
        raise SpaceError("A hypothesis space needs at least two tasks.")
    dup = sorted({t for t in names if names.count(t) > 1})
    if dup:
        raise SpaceError(f"Task names must be unique; repeated: {', '.join(dup)}.")
    return names


def _name_mismatch(given: Sequence[str], expected: Sequence[str], where: str) -> str:
    """Explain which names are missing/extra; hint at near-matches (case, spaces)."""
    given_set, expected_set = set(given), set(expected)
    missing = [t for t in expected if t not in given_set]
    extra = [t for t in given if t not in expected_set]
    if not missing and not extra:
        return ""
    parts = []
    if missing:
        parts.append(f"missing tasks: {', '.join(missing)}")
    if extra:
        parts.append(f"names that are not tasks: {', '.join(extra)}")
    norm = {t.strip().casefold(): t for t in missing}
    hints = [f"'{e}' -> '{norm[e.strip().casefold()]}'" for e in extra if e.strip().casefold() in norm]
    hint = f" (did you mean {', '.join(hints)}? names must match exactly)" if hints else ""
    return f"The matrix {where} do not match the tasks: {'; '.join(parts)}{hint}."


def _labels_from_binary(H: np.ndarray, names: Sequence[str]) -> tuple[str, ...] | None:
    """Group labels if the 0/1 matrix is a partition (its 1s form complete groups), else None."""
    n = len(names)
    off = ~np.eye(n, dtype=bool)
    if not np.isin(H[off], (0.0, 1.0)).all():
        return None
    same = (H == 1.0) | ~off
    labels = np.full(n, -1)
    for i in range(n):
        if labels[i] < 0:
            labels[same[i]] = i
    # a partition: every row equals the indicator of its own group
    if not np.array_equal(same, labels[:, None] == labels[None, :]):
        return None
    return tuple(f"group of {names[g]}" for g in labels)


# ---------------------------------------------------------------------------
# section 6: fit statistics
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FitResult:
    """Fit of a task space to a hypothesis space on the upper triangle (i < j).

    p-values are one-sided (S more aligned with H than under shuffled task labels);
    NaN where a statistic is undefined (constant S or H, no same-label pair, no labels).
    """

    level: str
    n_tasks: int
    n_pairs_upper: int
    spearman: float
    mantel_p: float
    within_minus_between: float
    wmb_p: float
    ari: float
    n_permutations: int

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
) -> list[tuple[float, np.ndarray]]:
    """Observed and permuted values of ``sum_{i<j} s_ij * M[p(i), p(j)]`` for each (s, M) pair.

    ``s`` is an upper-triangle vector of the task space, ``M`` a symmetric N x N matrix
    (e.g. the ranks of H). Permuting task labels jointly on rows and columns only
    rearranges M's off-diagonal values, so any statistic that is an increasing affine
    function of this dot product can be tested with it. All pairs share the same
    permutations; they are drawn in blocks so memory stays bounded.
    """
    n = pairs[0][1].shape[0]
    iu, ju = np.triu_indices(n, k=1)
    flat = [(sv, np.ascontiguousarray(M, dtype=float).ravel()) for sv, M in pairs]
    # observed through the same gather as the permutations, so ties compare like with like
    observed = [float(np.take(Mf, iu * n + ju) @ sv) for sv, Mf in flat]
    outs = [np.empty(n_permutations) for _ in pairs]
    base = np.arange(n, dtype=np.intp)
    chunk = max(16, _PERM_BLOCK_ENTRIES // max(1, iu.size))
    for start in range(0, n_permutations, chunk):
        m = min(chunk, n_permutations - start)
        perms = rng.permuted(np.broadcast_to(base, (m, n)), axis=1)
        idx = perms[:, iu] * n + perms[:, ju]  # flat indices into M: one take is cheaper than 2-D fancy indexing
        for (sv, Mf), out in zip(flat, outs, strict=True):
            out[start : start + m] = np.take(Mf, idx) @ sv
    return list(zip(observed, outs, strict=True))


def _p_value(observed: float, permuted: np.ndarray) -> float:
    # tolerance: permutations that reproduce H exactly (shuffles within a label) must count as ties
    tol = 1e-9 * max(1.0, abs(observed))
    return float((1 + np.count_nonzero(permuted >= observed - tol)) / (1 + permuted.size))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    den = math.sqrt(float(xc @ xc) * float(yc @ yc))
    return float(xc @ yc / den) if den > 0 else float("nan")


def cluster_labels(S: np.ndarray, n_clusters: int) -> np.ndarray:
    """Average-linkage clusters of ``D = 1 - S_scaled`` cut at ``n_clusters`` (1-based ids)."""
    D = distance_matrix(S)
    if D.shape[0] < 2:
        return np.ones(D.shape[0], dtype=int)
    Z = linkage(squareform(D, checks=False), method="average")
    return fcluster(Z, t=n_clusters, criterion="maxclust")


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
    of average-linkage clusters of 1 - S_scaled against H's labels needs ``H.labels``.
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

    ari = nan
    if H.labels is not None:
        k = len(set(H.labels))
        ari = float(adjusted_rand_score(list(H.labels), cluster_labels(A, k)))

    return FitResult(
        level=H.name,
        n_tasks=n,
        n_pairs_upper=int(s.size),
        spearman=rho,
        mantel_p=p["spearman"],
        within_minus_between=wmb,
        wmb_p=p["wmb"],
        ari=ari,
        n_permutations=int(n_permutations),
    )


# ---------------------------------------------------------------------------
# section 6: generalisation, distributedness, stability
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# section 7: embeddings and trees
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Embedding:
    """A 2-D layout of the tasks. ``method`` is what ran ('mds' or 'umap'); ``note`` says why it
    differs from ``requested`` (e.g. UMAP fell back to MDS for very few tasks)."""

    coords: np.ndarray = field(repr=False)
    method: str
    requested: str
    seed: int
    note: str = ""


def _mds(S: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import MDS  # only here: keeps module import light

    D = distance_matrix(S)
    n = D.shape[0]
    if n < 3:  # 1-2 points: place on a line at their distance
        return np.array([[0.0, 0.0], [D[0, 1] if n == 2 else 0.0, 0.0]])[:n]
    params = inspect.signature(MDS).parameters
    if "metric_mds" in params:  # scikit-learn >= 1.8 renamed dissimilarity -> metric
        model = MDS(n_components=2, metric="precomputed", metric_mds=True, init="classical_mds", random_state=seed)
    else:
        model = MDS(n_components=2, dissimilarity="precomputed", n_init=4, random_state=seed)
    return np.asarray(model.fit_transform(D), dtype=float)


def mds_embedding(S: np.ndarray, seed: int = 0) -> Embedding:
    """Metric MDS of ``D = 1 - S_scaled`` (scikit-learn, precomputed dissimilarities, seeded)."""
    return Embedding(_mds(np.asarray(S, dtype=float), seed), "mds", "mds", seed)


def umap_embedding(S: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> Embedding:
    """UMAP of ``D = 1 - S_scaled`` (precomputed metric, seeded, n_neighbors = min(15, N-1)).

    UMAP's spectral initialisation cannot run on very few tasks (N <= 3); then the layout
    falls back to MDS, with a :class:`SpaceWarning` and the reason in ``note``.
    """
    A = np.asarray(S, dtype=float)
    D = distance_matrix(A)
    n = D.shape[0]
    k = min(n_neighbors, n - 1)
    reason = ""
    if k < 2:
        reason = f"UMAP needs at least 3 tasks; got {n}"
    else:
        try:
            import umap  # lazy: slow import (numba)

            # Exact neighbours from D, as umap computes them for small precomputed inputs; passing them
            # skips compiling umap's numba kNN (~10 s on first use) and gives the identical layout.
            knn_idx = np.argsort(D, axis=1, kind="stable")[:, :k]
            knn = (knn_idx, np.take_along_axis(D, knn_idx, axis=1), None)
            with warnings.catch_warnings():
                # benign: no inverse_transform/transform with precomputed input; seeding disables parallelism
                warnings.filterwarnings("ignore", message=".*precomputed metric.*")
                warnings.filterwarnings("ignore", message=".*knn_search_index.*")
                warnings.filterwarnings("ignore", message=".*n_jobs value.*")
                warnings.filterwarnings("ignore", message=".*k >= N.*")  # tiny N: umap retries, or we fall back
                model = umap.UMAP(
                    n_components=2, n_neighbors=k, metric="precomputed", random_state=seed, precomputed_knn=knn
                )
                coords = np.asarray(model.fit_transform(D), dtype=float)
            if coords.shape == (n, 2) and np.all(np.isfinite(coords)):
                return Embedding(coords, "umap", "umap", seed)
            reason = "UMAP returned an invalid layout"
        except Exception as exc:  # noqa: BLE001 - umap raises assorted types on degenerate tiny inputs
            reason = f"UMAP could not run on {n} tasks ({type(exc).__name__}: {exc})"
    note = f"{reason}; showing MDS instead."
    warnings.warn(note, SpaceWarning, stacklevel=2)
    return Embedding(_mds(A, seed), "mds", "umap", seed, note)


def procrustes_align(series_of_layouts: Sequence[np.ndarray], reference_index: int = -1) -> list[np.ndarray]:
    """Align each N x 2 layout to the reference layout by rotation/reflection, scale and translation.

    Orthogonal Procrustes (scipy) on centred coordinates; scale = trace of the singular values
    / squared norm (least squares). Rows must be the same tasks in the same order. The
    reference is returned unchanged.
    """
    layouts = [np.asarray(X, dtype=float) for X in series_of_layouts]
    if not layouts:
        return []
    shapes = {X.shape for X in layouts}
    if len(shapes) != 1 or layouts[0].ndim != 2:
        raise SpaceError(f"All layouts must have the same shape (tasks x 2); got {sorted(shapes)}.")
    ref = layouts[reference_index]
    ref_mean = ref.mean(axis=0)
    ref_c = ref - ref_mean
    out = []
    for idx, X in enumerate(layouts):
        if idx == reference_index % len(layouts):
            out.append(ref.copy())
            continue
        Xc = X - X.mean(axis=0)
        norm2 = float((Xc**2).sum())
        if norm2 == 0.0:  # all points on one spot: nothing to rotate
            out.append(np.broadcast_to(ref_mean, X.shape).copy())
            continue
        R, sv_sum = orthogonal_procrustes(Xc, ref_c)
        out.append(Xc @ R * (sv_sum / norm2) + ref_mean)
    return out


@dataclass(frozen=True, eq=False)
class Tree:
    """Average-linkage tree of ``D = 1 - S_scaled``: scipy linkage matrix and leaf order."""

    linkage: np.ndarray = field(repr=False)
    leaf_order: tuple[int, ...]
    names: tuple[str, ...]

    @property
    def ordered_names(self) -> tuple[str, ...]:
        return tuple(self.names[i] for i in self.leaf_order)


def linkage_tree(S: np.ndarray, names: Sequence[str]) -> Tree:
    """scipy average linkage on condensed ``D``, with optimal leaf ordering (nicer heatmaps)."""
    D = distance_matrix(S)
    n = D.shape[0]
    if len(names) != n:
        raise SpaceError(f"Got {len(names)} names for {n} tasks.")
    if n < 2:
        return Tree(np.zeros((0, 4)), tuple(range(n)), tuple(map(str, names)))
    y = squareform(D, checks=False)
    Z = linkage(y, method="average")
    if n > 2:
        Z = optimal_leaf_ordering(Z, y)
    return Tree(Z, tuple(int(i) for i in leaves_list(Z)), tuple(map(str, names)))


def cluster_order(S: np.ndarray) -> np.ndarray:
    """Row order that puts similar tasks next to each other (for heatmaps)."""
    n = np.asarray(S).shape[0]
    return np.array(linkage_tree(S, [str(i) for i in range(n)]).leaf_order, dtype=int)
