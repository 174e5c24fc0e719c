"""Tests for taskspace_core.spaces.matrices: symmetric views of T, scaling, distances."""

from __future__ import annotations

import itertools
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


# ---------------------------------------------------------------------------
# issue 12: self-transfer guard for sym, profile_diagonal switch, stacks
# ---------------------------------------------------------------------------

# T00 = 1e-3 (noise): unguarded, R[0, 1] = 0.5 / 1e-3 = 500 gives S[0, 1] = 250 and,
# after scaling by 250, the real 0.8 similarity of tasks 2 and 3 becomes 0.0032.
T_TINY_SELF = np.array(
    [
        [1e-3, 0.5, 0.0, 0.1],
        [0.4, 5.0, 0.2, 0.1],
        [0.0, 0.3, 4.0, 3.2],
        [0.1, 0.2, 3.2, 4.0],
    ]
)


def test_sym_guard_on_near_zero_self_transfer():
    with pytest.warns(SpaceWarning, match=r"Tasks \[0\] have negative or near-zero self-transfer"):
        S = sp.symmetrise(T_TINY_SELF, how="sym")
    # row 0 is not normalised: only R[j, 0] = T[j, 0] / T[j, j] counts for its pairs
    assert S[0, 1] == pytest.approx(0.4 / 5.0) and S[0, 3] == pytest.approx(0.1 / 4.0)
    assert S[2, 3] == pytest.approx(0.8)
    assert sp.scale_similarity(S)[2, 3] == pytest.approx(0.8)  # not crushed by a 250
    # the floor (mean |T| off the diagonal) is what decides; a zero floor lets 1e-3 through
    assert sp.self_transfer_floor(T_TINY_SELF) == pytest.approx(np.abs(T_TINY_SELF[~np.eye(4, dtype=bool)]).mean())
    S0 = sp.symmetrise(T_TINY_SELF, how="sym", self_floor=0.0)
    assert S0[0, 1] == pytest.approx((0.5 / 1e-3 + 0.4 / 5.0) / 2)


def test_sym_guard_on_negative_self_transfer_and_intervals():
    T = T_TINY_SELF.copy()
    T[0, 0] = -3.0  # tuning hurt the task itself: no sign flip of its row any more
    with pytest.warns(SpaceWarning, match="near-zero self-transfer"):
        S = sp.symmetrise(T, how="sym")
    assert S[0, 1] == pytest.approx(0.4 / 5.0)
    # a self-transfer whose interval includes zero is not used either, however large
    lower = np.array([0.5, -0.1, 1.0, 1.0])
    with pytest.warns(SpaceWarning, match="interval includes zero"):
        S = sp.symmetrise(T_TINY_SELF, how="sym", self_lower=lower)
    assert S[0, 1] == pytest.approx(0.0)  # neither direction usable
    assert S[1, 2] == pytest.approx(0.3 / 4.0)
    with pytest.raises(SpaceError, match="zero or more"):
        sp.symmetrise(T_TINY_SELF, how="sym", self_floor=-1.0)


def _profile_exclude_plain(T: np.ndarray) -> np.ndarray:
    n = T.shape[0]
    S = np.eye(n)
    for i, j in itertools.combinations(range(n), 2):
        cols = [k for k in range(n) if k not in (i, j)]
        S[i, j] = S[j, i] = np.corrcoef(T[i, cols], T[j, cols])[0, 1]
    return S


def test_profile_exclude_matches_plain_correlation_over_other_columns():
    rng = np.random.default_rng(11)
    T = rng.normal(size=(7, 7)) + np.diag(rng.uniform(5, 50, 7)) + 100.0  # offset: running sums must not cancel
    np.testing.assert_allclose(sp.symmetrise(T, profile_diagonal="exclude"), _profile_exclude_plain(T), atol=1e-10)
    np.testing.assert_allclose(sp.symmetrise(T, profile_diagonal="include"), np.corrcoef(T), atol=1e-12)
    # the default excludes the diagonal from 4 tasks on, and falls back to the full rows below
    np.testing.assert_allclose(sp.symmetrise(T), _profile_exclude_plain(T), atol=1e-10)
    np.testing.assert_allclose(sp.symmetrise(T3), np.corrcoef(T3), atol=1e-12)
    assert sp.symmetrise_stack(T3[None])[0] == pytest.approx(np.corrcoef(T3))
    assert [sp.resolve_profile_diagonal(n) for n in (3, 4)] == ["include", "exclude"]
    assert sp.profile_label("profile", 3) == "T_profile (diagonal include)"
    assert sp.profile_label("profile", 8, "include") == "T_profile (diagonal include)"
    assert sp.profile_label("profile", 8) == "T_profile (diagonal exclude)" and sp.profile_label("sym", 8) == "T_sym"
    with pytest.raises(SpaceError, match="at least 4 tasks"):
        sp.symmetrise(T3, profile_diagonal="exclude")
    with pytest.raises(SpaceError, match="Unknown profile_diagonal"):
        sp.symmetrise(T, profile_diagonal="drop")  # type: ignore[arg-type]


def test_profile_null_level_with_diagonal_spikes():
    # pure noise off the diagonal, dominant self-transfer: including the diagonal pulls the
    # mean similarity to about -1/(N-1); excluding it keeps the null level at 0
    n, means = 8, {"include": [], "exclude": []}
    iu = np.triu_indices(n, 1)
    for seed in range(40):
        rng = np.random.default_rng(seed)
        T = rng.normal(size=(n, n)) + np.diag(rng.uniform(20, 40, n))
        for how in means:
            means[how].append(sp.symmetrise(T, profile_diagonal=how)[iu].mean())  # type: ignore[arg-type]
    assert np.mean(means["include"]) == pytest.approx(-1 / (n - 1), abs=0.03)
    assert abs(np.mean(means["exclude"])) < 0.03


def test_profile_exclude_constant_off_diagonal_row_warns():
    T = np.array([[5.0, 1.0, 1.0, 1.0], [0.2, 3.0, 0.5, 0.1], [0.3, 0.1, 4.0, 0.7], [0.9, 0.4, 0.2, 2.0]])
    with pytest.warns(SpaceWarning, match="constant off the diagonal"):
        S = sp.symmetrise(T, profile_diagonal="exclude")
    assert S[0, 1] == 0.0 and np.isfinite(S).all()


def test_symmetrise_stack_equals_one_by_one():
    rng = np.random.default_rng(5)
    Ts = rng.normal(size=(6, 5, 5)) + 4 * np.eye(5)
    for how, diag in (("profile", "include"), ("profile", "exclude"), ("sym", "include")):
        stacked = sp.symmetrise_stack(Ts, how, diag)  # type: ignore[arg-type]
        for T, S in zip(Ts, stacked, strict=True):
            np.testing.assert_allclose(S, sp.symmetrise(T, how, profile_diagonal=diag, self_floor=0.0), atol=1e-12)  # type: ignore[arg-type]
