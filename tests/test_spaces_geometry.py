"""Tests for taskspace_core.spaces.geometry: embeddings, Procrustes, trees."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from taskspace_core import spaces as sp
from taskspace_core.spaces import SpaceWarning


def _random_space(n: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).normal(size=(n, 5))
    return np.corrcoef(X)


@pytest.mark.parametrize("n", [4, 20])
def test_embeddings_run_and_are_deterministic(n):
    S = _random_space(n, seed=n)
    for fn in (sp.mds_embedding, sp.umap_embedding):
        e1, e2, e3 = fn(S, seed=0), fn(S, seed=0), fn(S, seed=1)
        assert e1.coords.shape == (n, 2) and np.isfinite(e1.coords).all()
        np.testing.assert_array_equal(e1.coords, e2.coords)
        assert e1.method == e1.requested and e1.note == ""
        assert e3.seed == 1
    # MDS keeps the distances' structure: the nearest pair in D stays close in the layout
    D = sp.distance_matrix(S)
    E = sp.mds_embedding(S).coords
    dist = np.linalg.norm(E[:, None] - E[None], axis=-1)
    assert spearmanr(D[np.triu_indices(n, 1)], dist[np.triu_indices(n, 1)])[0] > 0.5


def test_umap_falls_back_to_mds_for_tiny_n():
    S = _random_space(3, seed=0)
    with pytest.warns(SpaceWarning, match="showing MDS instead"):
        e = sp.umap_embedding(S, seed=0)
    assert (e.method, e.requested) == ("mds", "umap") and "MDS" in e.note
    assert e.coords.shape == (3, 2)
    with pytest.warns(SpaceWarning, match="at least 3 tasks"):
        assert sp.umap_embedding(np.eye(2)).coords.shape == (2, 2)


def test_procrustes_recovers_rotation_scale_translation():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 2))
    theta = 0.7
    R = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    Y = 2.5 * X @ R + np.array([3.0, -1.0])
    Z = 0.5 * X @ np.diag([1.0, -1.0]) - 4.0  # a reflection
    aligned = sp.procrustes_align([Y, Z, X])  # reference = last
    np.testing.assert_allclose(aligned[0], X, atol=1e-10)
    np.testing.assert_allclose(aligned[1], X, atol=1e-10)
    np.testing.assert_array_equal(aligned[2], X)
    first = sp.procrustes_align([X, Y], reference_index=0)
    np.testing.assert_array_equal(first[0], X)
    np.testing.assert_allclose(first[1], X, atol=1e-10)


def test_linkage_tree_and_cluster_order_keep_groups_together():
    S = np.array(
        [
            [1.0, 0.1, 0.9, 0.0, 0.1],
            [0.1, 1.0, 0.0, 0.8, 0.7],
            [0.9, 0.0, 1.0, 0.1, 0.0],
            [0.0, 0.8, 0.1, 1.0, 0.9],
            [0.1, 0.7, 0.0, 0.9, 1.0],
        ]
    )
    tree = sp.linkage_tree(S, list("abcde"))
    assert tree.linkage.shape == (4, 4)
    assert sorted(tree.leaf_order) == [0, 1, 2, 3, 4]
    order = list(sp.cluster_order(S))
    assert order == list(tree.leaf_order)
    pos = {i: order.index(i) for i in range(5)}
    assert abs(pos[0] - pos[2]) == 1  # {a, c} adjacent
    assert sorted(pos[i] for i in (1, 3, 4)) in ([0, 1, 2], [2, 3, 4])  # {b, d, e} contiguous
    assert set(tree.ordered_names) == set("abcde")
