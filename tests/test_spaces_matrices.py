"""Tests for taskspace_core.spaces.matrices: symmetric views of T, scaling, distances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskspace_core import spaces as sp
from taskspace_core.spaces import SpaceError, SpaceWarning

# ---------------------------------------------------------------------------
# section 4: symmetrisation
# ---------------------------------------------------------------------------

T3 = np.array(
    [
        [2.0, 1.0, 0.0],
        [0.5, 1.0, -0.5],
        [1.0, 0.0, 4.0],
    ]
)


def test_symmetrise_sym_by_hand():
    # R = T / diag row-wise: [[1, .5, 0], [.5, 1, -.5], [.25, 0, 1]]; S = (R + R^T) / 2
    expected = np.array(
        [
            [1.0, (0.5 + 0.5) / 2, (0.0 + 0.25) / 2],
            [(0.5 + 0.5) / 2, 1.0, (-0.5 + 0.0) / 2],
            [(0.0 + 0.25) / 2, (-0.5 + 0.0) / 2, 1.0],
        ]
    )
    np.testing.assert_allclose(sp.symmetrise(T3, how="sym"), expected)


def test_symmetrise_profile_by_hand():
    # centred rows: r0 = [1, 0, -1]; r1 = [1/6, 4/6, -5/6]; r2 = [-2/3, -5/3, 7/3]
    n0, n1, n2 = math.sqrt(2), math.sqrt((1 + 16 + 25) / 36), math.sqrt((4 + 25 + 49) / 9)
    c01 = (1 / 6 + 0 + 5 / 6) / (n0 * n1)
    c02 = (-2 / 3 + 0 - 7 / 3) / (n0 * n2)
    c12 = (1 / 6 * -2 / 3 + 4 / 6 * -5 / 3 + -5 / 6 * 7 / 3) / (n1 * n2)
    expected = np.array([[1, c01, c02], [c01, 1, c12], [c02, c12, 1]])
    S = sp.symmetrise(T3)  # profile is the default
    np.testing.assert_allclose(S, expected, atol=1e-12)
    np.testing.assert_allclose(S, np.corrcoef(T3), atol=1e-12)


def test_symmetrise_degenerate_rows_do_not_give_nan():
    T = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [2.0, 1.0, 4.0]])
    with pytest.warns(SpaceWarning, match="constant"):
        P = sp.symmetrise(T, how="profile")
    assert np.isfinite(P).all()
    assert P[0, 1] == 0.0 and P[0, 0] == 1.0
    with pytest.warns(SpaceWarning, match="zero self-transfer"):
        S = sp.symmetrise(T, how="sym")
    assert np.isfinite(S).all()
    # task 0 cannot be normalised: only R[1, 0] = 1/2 and R[2, 0] = 2/4 are used
    assert S[0, 1] == pytest.approx(1 / 2) and S[0, 2] == pytest.approx(2 / 4)
    assert S[1, 2] == pytest.approx((3 / 2 + 1 / 4) / 2)


def test_symmetrise_rejects_missing_and_unknown():
    with pytest.raises(SpaceError, match="missing values in rows \\[1\\]"):
        sp.symmetrise(np.array([[1.0, 0.0], [np.nan, 1.0]]))
    with pytest.raises(SpaceError, match="Unknown symmetrisation"):
        sp.symmetrise(T3, how="cosine")  # type: ignore[arg-type]
    with pytest.raises(SpaceError, match="square"):
        sp.symmetrise(np.ones((2, 3)))


def test_scale_similarity_and_distance():
    S = np.array([[9.0, 4.0, -2.0], [4.0, 9.0, 1.0], [-2.0, 1.0, 9.0]])
    np.testing.assert_allclose(sp.scale_similarity(S), [[1, 1, -0.5], [1, 1, 0.25], [-0.5, 0.25, 1]])
    np.testing.assert_allclose(sp.distance_matrix(S), [[0, 0, 1.5], [0, 0, 0.75], [1.5, 0.75, 0]])
    # already in [-1, 1]: untouched apart from the diagonal
    np.testing.assert_allclose(sp.scale_similarity(S / 10)[0, 1:], [0.4, -0.2])
