"""The statistics of the agreement and symmetrisation studies (benchmarks/), on planted matrices."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _study import StudySpace, paradigm_view  # noqa: E402
from bench_first_order import agreement, row_calibrated, within_category  # noqa: E402
from bench_symmetrisation import category_separation, twin_ranks  # noqa: E402

CATS = ["a", "a", "b", "b", "c", "c"]


def _planted(within: float, between: float) -> np.ndarray:
    S = np.array([[within if x == y else between for y in CATS] for x in CATS])
    np.fill_diagonal(S, 1.0)
    return S


def test_category_separation_of_a_planted_space():
    wb, auc = category_separation(_planted(0.8, 0.1), CATS)
    assert wb == pytest.approx(0.7) and auc == pytest.approx(1.0)
    wb, auc = category_separation(_planted(0.1, 0.8), CATS)
    assert wb == pytest.approx(-0.7) and auc == pytest.approx(0.0)
    assert category_separation(_planted(0.3, 0.3), CATS)[1] == pytest.approx(0.5)  # ties count half


def test_twin_ranks_find_the_other_half():
    names = ["x__a", "x__b", "y", "z"]
    S = np.array([[1, 0.9, 0.2, 0.1], [0.9, 1, 0.95, 0.1], [0.2, 0.95, 1, 0], [0.1, 0.1, 0, 1.0]])
    assert twin_ranks(S, names) == [1, 2]  # x__b's nearest is y, its twin second


def test_paradigm_view_keeps_half_a_as_the_paradigm():
    sp = StudySpace(["p", "q__a", "q__b"], ["c", "d", "d"], np.arange(9.0).reshape(3, 3))
    view = paradigm_view(sp)
    assert view.names == ["p", "q"] and view.categories == ["c", "d"]
    assert view.T.tolist() == [[0.0, 1.0], [3.0, 4.0]]


def test_agreement_is_one_for_a_monotone_copy_and_drops_when_rows_are_shuffled():
    rng = np.random.default_rng(0)
    T = rng.normal(size=(6, 6)) + 3 * np.eye(6)
    sp = StudySpace([f"t{i}" for i in range(6)], CATS, T)
    same = agreement(sp, StudySpace(sp.names, CATS, 0.5 * T + 0.01 * T**3))
    assert same["all"] == pytest.approx(1.0) and same["off_diagonal"] == pytest.approx(1.0)
    shuffled = T.copy()
    off = ~np.eye(6, dtype=bool)
    shuffled[off] = rng.permutation(T[off])
    a = agreement(sp, StudySpace(sp.names, CATS, shuffled))
    assert a["off_diagonal"] < 0.5 and a["all"] > a["off_diagonal"]  # the diagonal still agrees


def test_within_category_profile_similarity_is_high_for_shared_profiles():
    base = np.random.default_rng(1).normal(size=(3, 6))
    T = np.repeat(base, 2, axis=0) + 0.01 * np.random.default_rng(2).normal(size=(6, 6))
    out = within_category(StudySpace([f"t{i}" for i in range(6)], CATS, T), how="include")
    assert set(out) == {"a", "b", "c"} and min(out.values()) > 0.99


def test_row_calibration_undoes_a_per_row_overshoot():
    rng = np.random.default_rng(3)
    T = rng.normal(size=(6, 6)) + 4 * np.eye(6)
    factor = rng.uniform(0.5, 3.0, size=6)
    exact = StudySpace([f"t{i}" for i in range(6)], CATS, T)
    first = StudySpace(exact.names, CATS, T * factor[:, None])
    assert np.allclose(row_calibrated(exact, first).T, T)
    assert agreement(exact, row_calibrated(exact, first))["all"] == pytest.approx(1.0)
