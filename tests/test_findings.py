"""The paper's three series findings tested (spaces.findings): known answers and reference computations."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from taskspace_core import spaces

CATS = list("aaabbbccc")


def planted_T(g: float, rng: np.random.Generator, noise: float = 0.0) -> np.ndarray:
    """Self-transfer 1, transfer g to category-mates, 0 elsewhere (plus noise off the diagonal)."""
    c = np.array(CATS)
    T = np.where(c[:, None] == c[None, :], g, 0.0) + noise * rng.standard_normal((len(c), len(c)))
    np.fill_diagonal(T, 1.0)
    return T


def test_trend_p_is_exact_for_few_models() -> None:
    rho, p = spaces.trend_p([1, 2, 3, 4], [0.1, 0.2, 0.5, 0.9])
    assert rho == pytest.approx(1.0) and p == pytest.approx(2 / 24)  # both monotone orders of 4! reach |rho| = 1
    rho, p = spaces.trend_p([1, 2, 3], [3, 1, 2])
    ref = np.mean([abs(spearmanr([1, 2, 3], o)[0]) >= abs(rho) - 1e-12 for o in itertools.permutations([3, 1, 2])])
    assert rho == pytest.approx(spearmanr([1, 2, 3], [3, 1, 2])[0]) and p == pytest.approx(ref)


def test_generalisation_trend_recovers_a_planted_growth() -> None:
    rng = np.random.default_rng(0)
    g = [0.1, 0.3, 0.6]
    res = spaces.generalisation_trend([planted_T(v, rng) for v in g], [1e5, 1e6, 1e7], CATS)
    assert res.value == pytest.approx(tuple(g))  # the ratio of means is exactly g when every task has it
    assert res.change == pytest.approx(0.5) and res.change_low == pytest.approx(0.5)
    assert res.p_change < 0.01 and res.rho == pytest.approx(1.0) and res.n_tasks == 9
    # models given out of order are sorted by x
    res2 = spaces.generalisation_trend([planted_T(v, rng) for v in (0.6, 0.1, 0.3)], [1e7, 1e5, 1e6], CATS)
    assert res2.value == pytest.approx(tuple(g))


def test_generalisation_trend_interval_covers_and_null_is_not_significant() -> None:
    rng = np.random.default_rng(1)
    hits, small_p = 0, 0
    for _ in range(40):
        Ts = [planted_T(0.3, rng, noise=0.1) for _ in range(2)]  # same truth: change 0
        r = spaces.generalisation_trend(Ts, [1, 2], CATS, n_boot=400, seed=int(rng.integers(1 << 30)))
        hits += r.change_low <= 0 <= r.change_high
        small_p += r.p_change < 0.05
    assert hits >= 32 and small_p <= 8  # nominal 95% / 5%; the bootstrap over 9 tasks is a little liberal
    assert "no trend test (2 models" in r.sentence("size") and "nan" not in r.sentence("size")
    big = spaces.generalisation_trend([planted_T(0.1, rng, 0.05), planted_T(0.5, rng, 0.05)], [1, 2], CATS)
    assert big.p_change < 0.01 and big.change_low > 0.2


def test_distributedness_trend_on_planted_lift() -> None:
    rng = np.random.default_rng(2)
    c = np.array(CATS)
    same = c[:, None] == c[None, :]
    lifts = [np.where(same, 1.0 + d, 1.0) + 0.02 * rng.standard_normal(same.shape) for d in (0.0, 0.2, 0.4, 0.8)]
    for L in lifts:
        L[:] = (L + L.T) / 2
    res = spaces.distributedness_trend(lifts, [0, 10, 100, 1000], CATS)
    for got, want in zip(res.value, (0.0, 0.2, 0.4, 0.8), strict=True):
        assert got == pytest.approx(want, abs=0.02)
    assert res.change_low > 0.6 and res.p_change < 0.01
    assert res.rho == pytest.approx(1.0) and res.p_rho == pytest.approx(2 / 24)
    assert all(lo <= v <= hi for lo, v, hi in zip(res.low, res.value, res.high, strict=True))


def _upper(A: np.ndarray) -> np.ndarray:
    return A[np.triu_indices(len(A), k=1)]


def test_compare_spaces_mantel_p_matches_exact_enumeration() -> None:
    rng = np.random.default_rng(3)
    n = 5
    X = rng.standard_normal((n, n))
    A = X + X.T
    Y = A + 1.5 * rng.standard_normal((n, n))
    B = Y + Y.T
    obs = spearmanr(_upper(A), _upper(B))[0]
    perms = [spearmanr(_upper(A), _upper(B[np.ix_(p, p)]))[0] for p in itertools.permutations(range(n))]
    exact = np.mean(np.array(perms) >= obs - 1e-12)
    res = spaces.compare_spaces(A, B, n_permutations=20_000, seed=4)
    assert res.rho == pytest.approx(obs)
    assert res.p == pytest.approx(exact, abs=0.01)


def test_stability_of_identical_and_of_unrelated_spaces() -> None:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((10, 10))
    S = X + X.T
    res = spaces.stability_test([S, S, S], [0, 1, 2], n_permutations=999)
    assert res.mean_consecutive == pytest.approx(1.0)
    assert all(c.p == pytest.approx(1 / 1000) and c.low == pytest.approx(1.0) for c in res.consecutive)
    noise = []
    for _ in range(3):
        Z = rng.standard_normal((10, 10))
        noise.append(Z + Z.T)
    res = spaces.stability_test(noise, [2, 0, 1], n_permutations=999)
    assert res.x == (0.0, 1.0, 2.0) and abs(res.mean_consecutive) < 0.4
    assert all(c.low < c.rho < c.high for c in res.consecutive)
    with pytest.raises(spaces.SpaceError):
        spaces.stability_test([S], [0])


def test_series_findings_on_a_cached_series_match_the_statistics_they_wrap(tmp_path, monkeypatch, capsys) -> None:
    from precompute.cli import main
    from taskspace_core import methods
    from taskspace_core.results import load_series
    from taskspace_core.series_findings import series_findings
    from taskspace_core.store import Store
    from tests.fixtures_spaces import SERIES, SIZES, STEPS, prefill_cache

    prefill_cache(tmp_path)
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path))
    results = load_series(Store(tmp_path), SERIES)
    found = series_findings(results, n_boot=200, n_permutations=199)
    assert found.sizes == [s for s, _ in SIZES] and not found.notes
    finals = [r for r in results if r.model.step == STEPS[-1]]
    finals.sort(key=lambda r: r.model.n_parameters)
    for k, r in enumerate(finals):  # generalisation per size = the guarded ratio of means of its own T
        assert found.generalisation.value[k] == pytest.approx(spaces.generalisation(r.T, r.labels("category")).value)
    for size, _ in SIZES:
        mine = sorted((r for r in results if r.model.size_label == size), key=lambda r: r.model.step)
        want = [spaces.distributedness(r.lift_per_tensor, r.labels("category")).difference for r in mine]
        assert found.distributedness[size].value == pytest.approx(tuple(want))
        assert found.distributedness[size].change > 0  # the synthetic series' category structure grows with step
        prof = [methods.view("profile").make(r) for r in mine]
        for k, c in enumerate(found.stability[size].consecutive):
            assert c.rho == pytest.approx(spearmanr(_upper(prof[k]), _upper(prof[k + 1]))[0])
    out = tmp_path / "findings.csv"
    assert main(["findings", "--series", SERIES, "--bootstrap", "100", "--permutations", "99", "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("(1) by size") == 1 and printed.count("(2) ") == 2 and printed.count("(3) ") == 2
    assert len(pd.read_csv(out)) == len(SIZES) * (1 + len(STEPS) + 2 * (len(STEPS) - 1))
    assert main(["findings", "--series", "no-such-series"]) == 2


def test_sizes_are_compared_at_the_last_step_they_share(tmp_path) -> None:
    from taskspace_core.results import load_series
    from taskspace_core.series_findings import series_findings
    from taskspace_core.store import Store
    from tests.fixtures_spaces import SERIES, SIZES, STEPS, prefill_cache

    prefill_cache(tmp_path)
    results = load_series(Store(tmp_path), SERIES)
    small, large = SIZES[0][0], SIZES[1][0]
    cut = [r for r in results if not (r.model.size_label == large and r.model.step == STEPS[-1])]  # still training
    found = series_findings(cut, n_boot=100, n_permutations=99)
    assert found.generalisation_step == STEPS[-2]
    at = {r.model.size_label: r for r in cut if r.model.step == STEPS[-2]}
    want = [spaces.generalisation(at[s].T, at[s].labels("category")).value for s in (small, large)]
    assert found.generalisation.value == pytest.approx(tuple(want))
    assert f"at step {STEPS[-2]}" in found.report()[0]
