"""Tests for taskspace_core.spaces.series: generalisation, distributedness, stability by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskspace_core import spaces as sp

# ---------------------------------------------------------------------------
# section 6: generalisation, distributedness, stability
# ---------------------------------------------------------------------------


def test_generalisation_by_hand():
    T = np.array(
        [
            [2.0, 1.0, 0.5, 0.0],
            [0.4, 4.0, 0.2, 1.0],
            [1.0, 0.6, 5.0, 9.0],
            [1.0, 1.0, 1.0, 2.0],
        ]
    )
    cats = ["x", "x", "x", "y"]
    g = sp.generalisation_scores(T, cats)
    np.testing.assert_allclose(g[:3], [(1.0 + 0.5) / 2 / 2.0, (0.4 + 0.2) / 2 / 4.0, (1.0 + 0.6) / 2 / 5.0])
    assert np.isnan(g[3])  # the only task of category y
    expected = ((1.0 + 0.5) / 2 / 2.0 + (0.4 + 0.2) / 2 / 4.0 + (1.0 + 0.6) / 2 / 5.0) / 3
    assert sp.model_generalisation(T, cats) == pytest.approx(expected)
    assert math.isnan(sp.model_generalisation(T, ["x", "y", "z", "w"]))


def test_distributedness_by_hand():
    L = np.array(
        [
            [np.nan, 5.0, 2.0, 1.0],
            [5.0, np.nan, 3.0, 2.0],
            [2.0, 3.0, np.nan, 4.0],
            [1.0, 2.0, 4.0, np.nan],
        ]
    )
    d = sp.distributedness(L, ["x", "x", "y", "y"])
    assert d.within == pytest.approx((5.0 + 4.0) / 2)
    assert d.between == pytest.approx((2.0 + 1.0 + 3.0 + 2.0) / 4)
    assert d.difference == pytest.approx((5.0 + 4.0) / 2 - (2.0 + 1.0 + 3.0 + 2.0) / 4)
    assert (d.n_within, d.n_between) == (2, 4)


def test_stability_by_hand():
    iu = np.triu_indices(4, 1)

    def space(upper: list[float]) -> np.ndarray:
        S = np.eye(4)
        S[iu] = upper
        return S + np.triu(S, 1).T

    a = space([1, 2, 3, 4, 5, 6])
    b = space([2, 4, 6, 8, 10, 12])  # same order as a
    c = space([6, 5, 4, 3, 2, 1])  # reversed
    d = space([1, 2, 3, 4, 6, 5])  # one swap: rho = 1 - 6 * (1 + 1) / (6 * 35)
    st = sp.stability([a, b, c, d])
    np.testing.assert_allclose(st.consecutive, [1.0, -1.0, -(1 - 6 * 2 / (6 * 35))])
    np.testing.assert_allclose(st.against_last, [1 - 6 * 2 / (6 * 35), 1 - 6 * 2 / (6 * 35), -(1 - 6 * 2 / 210), 1.0])
