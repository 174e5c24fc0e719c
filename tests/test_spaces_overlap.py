"""Tests for taskspace_core.spaces.overlap: Jaccard by hand, packed popcounts, chance level and lift."""

from __future__ import annotations

import numpy as np
import pytest

from taskspace_core import spaces as sp
from taskspace_core.spaces import SpaceError

# ---------------------------------------------------------------------------
# section 5: Jaccard and overlap lift
# ---------------------------------------------------------------------------

# 20 parameters in two tensors of sizes 8 and 12
SIZES = [8, 12]


def _mask(positions: list[int]) -> np.ndarray:
    m = np.zeros(20, dtype=bool)
    m[positions] = True
    return m


MASKS = [_mask([0, 1, 2, 10]), _mask([1, 2, 3, 10, 11]), _mask([15, 16, 17, 18, 19])]
COUNTS = np.array([[3, 1], [3, 2], [0, 5]])


def test_jaccard_by_hand_bool_and_packed():
    # |m0 & m1| = |{1, 2, 10}| = 3, |m0 | m1| = 4 + 5 - 3 = 6; m2 shares nothing
    expected = np.array([[1.0, 3 / 6, 0.0], [3 / 6, 1.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(sp.jaccard_matrix(MASKS), expected)
    np.testing.assert_allclose(sp.jaccard_matrix([np.packbits(m) for m in MASKS]), expected)


def test_mask_intersections_match_dense_product():
    rng = np.random.default_rng(3)
    masks = [rng.random(100_003) < 0.05 for _ in range(7)]
    dense = np.stack(masks).astype(np.int64)
    # a small chunk forces several blocks and a ragged last one
    C = sp.mask_intersections([np.packbits(m) for m in masks], chunk_words=1000)
    np.testing.assert_array_equal(C, dense @ dense.T)


def test_popcount_fallback_without_bitwise_count(monkeypatch):
    rng = np.random.default_rng(4)
    masks = [np.packbits(rng.random(5_001) < 0.1) for _ in range(4)]
    expected = sp.mask_intersections(masks)
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # as on numpy < 2
    np.testing.assert_array_equal(sp.mask_intersections(masks), expected)


def test_tensor_counts():
    for m, row in zip(MASKS, COUNTS, strict=True):
        np.testing.assert_array_equal(sp.tensor_counts(m, SIZES), row)
        np.testing.assert_array_equal(sp.tensor_counts(np.packbits(m), SIZES), row)


def test_overlap_lift_per_tensor_by_hand():
    J = sp.jaccard_matrix(MASKS)
    lift = sp.overlap_lift(J, COUNTS, SIZES, baseline="per_tensor")
    e01 = 3 * 3 / 8 + 1 * 2 / 12
    chance01 = e01 / (4 + 5 - e01)
    assert lift[0, 1] == pytest.approx((3 / 6) / chance01)
    assert lift[1, 0] == pytest.approx(lift[0, 1])
    assert lift[0, 2] == 0.0 and lift[1, 2] == 0.0  # no overlap, positive chance
    assert np.isnan(np.diag(lift)).all()
    e02 = 0 * 3 / 8 + 1 * 5 / 12
    assert sp.chance_jaccard(COUNTS, SIZES)[0, 2] == pytest.approx(e02 / (4 + 5 - e02))
    # the same with tensors named
    named = [{"a": 3, "b": 1}, {"a": 3, "b": 2}, {"b": 5}]
    np.testing.assert_allclose(sp.overlap_lift(J, named, {"a": 8, "b": 12}), lift, equal_nan=True)


def test_overlap_lift_uniform_by_hand():
    J = sp.jaccard_matrix(MASKS)
    k = 0.25
    lift_k = sp.overlap_lift(J, COUNTS, SIZES, baseline="uniform", k=k)
    assert lift_k[0, 1] == pytest.approx((3 / 6) / (k / (2 - k)))
    # without k: all parameters pooled, E|m0 & m1| = 4 * 5 / 20 = 1, E|m0 | m1| = 4 + 5 - 1
    lift = sp.overlap_lift(J, COUNTS, SIZES, baseline="uniform")
    assert lift[0, 1] == pytest.approx((3 / 6) / (1 / 8))
    # masks with exactly the fraction k per mask reproduce k / (2 - k)
    same_k = sp.chance_jaccard(np.array([[2, 3], [1, 4]]), SIZES, baseline="uniform")
    assert same_k[0, 1] == pytest.approx(0.25 / (2 - 0.25))


def test_overlap_input_errors():
    J = sp.jaccard_matrix(MASKS)
    with pytest.raises(SpaceError, match="larger than the tensor"):
        sp.overlap_lift(J, np.array([[9, 0], [0, 0], [0, 0]]), SIZES)
    with pytest.raises(SpaceError, match="Unknown overlap baseline"):
        sp.overlap_lift(J, COUNTS, SIZES, baseline="global")  # type: ignore[arg-type]
    with pytest.raises(SpaceError, match="different lengths"):
        sp.jaccard_matrix([np.zeros(16, bool), np.zeros(24, bool)])
