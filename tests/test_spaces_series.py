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
    # the model score is the ratio of means over tasks (issue 12), not the mean of ratios
    expected = ((1.0 + 0.5) / 2 + (0.4 + 0.2) / 2 + (1.0 + 0.6) / 2) / (2.0 + 4.0 + 5.0)
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


# the issue's example: unguarded, per-task values [50, 0.05, -1.5, 0.02] and a model score of 12.1
T_EDGE = np.array([[0.01, 0.5, 0, 0], [0.4, 8, 0, 0], [0, 0, -0.2, 0.3], [0, 0, 0.1, 5]])


def test_generalisation_guard_on_the_issue_example():
    g = sp.generalisation(T_EDGE, list("aabb"))
    # floor = mean |T| off the diagonal = 1.3 / 12; tasks 0 (0.01) and 2 (-0.2) fall below it
    assert g.noise_floor == pytest.approx(1.3 / 12)
    assert g.excluded == (0, 2) and (g.n_excluded, g.n_included, g.n_without_mates) == (2, 2, 0)
    np.testing.assert_allclose(g.per_task, [np.nan, 0.4 / 8, np.nan, 0.1 / 5])
    assert g.value == pytest.approx((0.4 + 0.1) / (8 + 5))
    assert g.low <= g.value <= g.high and g.low >= 0.02 and g.high <= 0.05  # resamples of {0.05, 0.02}-tasks
    assert "ratio of means" in g.aggregate and "bootstrap over the 2 included tasks" in g.interval
    assert sp.model_generalisation(T_EDGE, list("aabb")) == pytest.approx(g.value)
    np.testing.assert_array_equal(np.isnan(sp.generalisation_scores(T_EDGE, list("aabb"))), [True, False, True, False])


def test_generalisation_guard_with_self_transfer_intervals():
    T = np.array([[4.0, 1.0, 0.0], [2.0, 5.0, 0.0], [0.0, 0.5, 3.0]])
    lower = np.array([-0.5, 1.0, 1.0])  # task 0's self-transfer interval includes zero
    g = sp.generalisation(T, list("aab"), self_lower=lower, noise_floor=0.0)
    assert g.excluded == (0,) and g.n_without_mates == 1 and g.n_included == 1
    assert g.value == pytest.approx(2.0 / 5.0)
    nothing = sp.generalisation(T, list("abc"))
    assert math.isnan(nothing.value) and nothing.n_without_mates == 3


def test_generalisation_interval_collapses_when_every_task_has_the_same_ratio():
    # num_i = 0.25 * T_ii for every task: every resample of tasks gives 0.25 exactly
    T = np.array([[2.0, 0.5, 0.0, 0.0], [1.0, 4.0, 0.0, 0.0], [0.0, 0.0, 8.0, 2.0], [0.0, 0.0, 0.75, 3.0]])
    g = sp.generalisation(T, list("aabb"), noise_floor=0.0)
    assert g.value == pytest.approx(0.25) and g.low == pytest.approx(0.25) and g.high == pytest.approx(0.25)
    # with unequal ratios, the interval spans the spread of the tasks' contributions
    T[3, 2] = 3.0
    g = sp.generalisation(T, list("aabb"), noise_floor=0.0)
    assert g.value == pytest.approx((0.5 + 1.0 + 2.0 + 3.0) / (2 + 4 + 8 + 3)) and g.low < g.value < g.high
