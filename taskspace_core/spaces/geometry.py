"""Geometry of a task space (METHODS s7): MDS/UMAP layouts, Procrustes alignment, linkage trees, clusters.

umap-learn is imported lazily because its import is slow (numba).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.cluster.hierarchy import fcluster, leaves_list, linkage, optimal_leaf_ordering
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.distance import squareform

from taskspace_core.spaces.matrices import SpaceError, SpaceWarning, distance_matrix, distance_stack


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
    if "metric_mds" not in params:  # scikit-learn < 1.8: dissimilarity=, random inits
        model = MDS(n_components=2, dissimilarity="precomputed", n_init=4, random_state=seed)
        return np.asarray(model.fit_transform(D), dtype=float)
    model = MDS(n_components=2, metric="precomputed", metric_mds=True, init="classical_mds", random_state=seed)
    try:
        with np.errstate(invalid="ignore"):  # its NaN is caught below as a ValueError
            return np.asarray(model.fit_transform(D), dtype=float)
    except ValueError:  # a non-Euclidean D has a negative eigenvalue: scikit-learn's classical init is NaN
        model = MDS(n_components=2, metric="precomputed", metric_mds=True, init="random", n_init=1, random_state=seed)
        return np.asarray(model.fit_transform(D, init=_classical_init(D)), dtype=float)


def _classical_init(D: np.ndarray) -> np.ndarray:
    """Classical (Torgerson) MDS with negative eigenvalues clipped to 0, as a SMACOF start."""
    B = -0.5 * D**2
    B -= B.mean(axis=0)
    B -= B.mean(axis=1, keepdims=True)
    w, U = np.linalg.eigh(B)
    w, U = w[::-1][:2], U[:, ::-1][:, :2]
    return U * np.sqrt(np.clip(w, 0.0, None))


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


def cluster_labels(S: np.ndarray, n_clusters: int) -> np.ndarray:
    """Average-linkage clusters of ``D = 1 - S_scaled`` cut at ``n_clusters`` (1-based ids)."""
    return _clusters(distance_matrix(S), n_clusters)


def cluster_labels_stack(Ss: np.ndarray, n_clusters: int) -> np.ndarray:
    """:func:`cluster_labels` of each symmetric space of a stack (B x N x N -> B x N), distances in one go."""
    return np.stack([_clusters(D, n_clusters) for D in distance_stack(Ss)])


def _clusters(D: np.ndarray, n_clusters: int) -> np.ndarray:
    if D.shape[0] < 2:
        return np.ones(D.shape[0], dtype=int)
    Z = linkage(squareform(D, checks=False), method="average")
    return fcluster(Z, t=n_clusters, criterion="maxclust")
