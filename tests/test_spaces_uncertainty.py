"""Tests for taskspace_core.spaces.uncertainty: bootstrap over eval pairs, fit intervals, split-half reliability."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from taskspace_core import spaces as sp
from taskspace_core.spaces import HypothesisSpace, PairMargins, SpaceError
from taskspace_core.spaces.uncertainty import _weighted_metrics
from tests.sim_spaces import planted_transfer, simulate_margins


def test_point_estimates_and_ties_by_hand():
    base = [[1.0, -2.0, 0.0, 3.0], [0.5, 0.5, -0.5, 1e-7]]
    tuned = [
        [[2.0, -1.0, 1.0, 3.0], [0.5, 1.5, -0.5, 0.0]],
        [[1.0, 0.0, 0.0, -3.0], [2.5, 0.5, 0.5, 1.0]],
    ]
    b = sp.bootstrap_transfer(PairMargins.from_arrays(base, tuned), n_boot=50)
    # ties (|m| < 1e-6) count half: base accuracy of task 0 = (1 + 0 + 0.5 + 1) / 4, task 1 = (1 + 1 + 0 + 0.5) / 4
    np.testing.assert_allclose(b.base["accuracy"].value, [2.5 / 4, 2.5 / 4])
    np.testing.assert_allclose(
        b.tuned["accuracy"].value, [[(1 + 0 + 1 + 1) / 4, (1 + 1 + 0 + 0.5) / 4], [(1 + 0.5 + 0.5 + 0) / 4, 1.0]]
    )
    expected_T = np.mean(tuned, axis=2) - np.mean(base, axis=1)[None, :]
    np.testing.assert_allclose(b.T.value, expected_T)
    np.testing.assert_allclose(b.base["mean_margin"].value, np.mean(base, axis=1))
    assert b.replicates.shape == (50, 2, 2) and b.n_pairs == (4, 4)
    assert np.all(b.T.low <= b.T.value + 1e-12) and np.all(b.T.value <= b.T.high + 1e-12)
    acc = sp.bootstrap_transfer(PairMargins.from_arrays(base, tuned), metric="accuracy", n_boot=10)
    np.testing.assert_allclose(acc.T.value, acc.tuned["accuracy"].value - acc.base["accuracy"].value[None, :])


def test_weighted_metrics_equal_plain_resampled_means():
    m = simulate_margins(planted_transfer("aabc"), n_pairs=9, noise_sd=1.0, seed=4)
    rng = np.random.default_rng(0)
    idx = [rng.integers(0, 9, size=(3, 9)) for _ in range(4)]
    counts = [np.stack([np.bincount(row, minlength=9) for row in ix]) for ix in idx]
    base, tuned = _weighted_metrics(m, counts, "mean_margin")
    for r in range(3):
        for j in range(4):
            assert base[r, j] == pytest.approx(m.base[j][idx[j][r]].mean())
            for i in range(4):
                assert tuned[r, i, j] == pytest.approx(m.tuned[i][j][idx[j][r]].mean())


def test_pair_margins_validation():
    with pytest.raises(SpaceError, match="do not cover its 3 eval pairs"):
        PairMargins.from_arrays([[1, 2, 3], [1, 2, 3]], [[[1, 2, 3], [1, 2]], [[1, 2, 3], [1, 2, 3]]])
    with pytest.raises(SpaceError, match="2 x 2"):
        PairMargins.from_arrays([[1, 2], [1, 2]], [[[1, 2], [1, 2]]])
    with pytest.raises(SpaceError, match="finite"):
        PairMargins.from_arrays([[1, np.nan], [1, 2]], np.zeros((2, 2, 2)))
    with pytest.raises(SpaceError, match="Unknown metric"):
        sp.bootstrap_transfer(PairMargins.from_arrays([[1, 2], [1, 2]], np.zeros((2, 2, 2))), metric="logp")  # type: ignore[arg-type]


def test_bootstrap_intervals_cover_at_the_nominal_rate():
    # 200 simulated replications of a 5-task run (48 eval pairs, known noise): how often
    # does each 95% interval hold the true value?
    T_true = planted_transfer("aabbc", within=1.0, self_transfer=4.0)
    base_sd, noise_sd = 2.0, 3.0
    true = {
        "T": T_true,
        "base_mean_margin": np.full(5, 0.5),
        "base_accuracy": np.full(5, norm.cdf(0.5 / base_sd)),
        "tuned_accuracy": norm.cdf((0.5 + T_true) / math.hypot(base_sd, noise_sd)),
    }
    hits: dict[str, list[np.ndarray]] = {k: [] for k in true}
    for rep in range(200):
        b = sp.bootstrap_transfer(simulate_margins(T_true, 48, noise_sd, seed=rep, base_sd=base_sd), seed=rep)
        est = {
            "T": b.T,
            "base_mean_margin": b.base["mean_margin"],
            "base_accuracy": b.base["accuracy"],
            "tuned_accuracy": b.tuned["accuracy"],
        }
        for k, e in est.items():
            hits[k].append((e.low <= true[k]) & (true[k] <= e.high))
    for k, h in hits.items():
        assert 0.88 <= np.mean(h) <= 0.99, (k, np.mean(h))
    assert 0.92 <= np.mean(hits["T"]) <= 0.97


CATS = "aaabbbcccddd"
NAMES = [f"t{i}" for i in range(12)]
H12 = HypothesisSpace.from_labels("category", NAMES, list(CATS))


def test_replicate_fit_statistics_equal_fit_hypothesis_per_replicate():
    b = sp.bootstrap_transfer(simulate_margins(planted_transfer(CATS), 48, 3.0, seed=1), n_boot=12)
    reps = sp.symmetrise_stack(b.replicates)
    stats = sp.uncertainty.replicate_fit_statistics(reps, H12)
    for r, S in enumerate(reps):
        f = sp.fit_hypothesis(S, H12, n_permutations=1)
        assert stats["spearman"][r] == pytest.approx(f.spearman)
        assert stats["wmb"][r] == pytest.approx(f.within_minus_between)
        assert stats["ari"][r] == pytest.approx(f.ari)


def test_bootstrap_fit_on_planted_structure_and_on_noise():
    # within 1.5: with the diagonal excluded (the default) a pair shares one category-mate column
    T_true = planted_transfer(CATS, within=1.5)
    planted = sp.bootstrap_fit(sp.bootstrap_transfer(simulate_margins(T_true, 48, 3.0, 2)), H12, n_permutations=999)
    d = planted.as_dict()
    assert d["mantel_p"] < 0.01 and d["ari_p"] < 0.05 and d["spearman_low"] > 0.1
    assert d["spearman_low"] <= d["spearman"] <= d["spearman_high"] and d["ci_level"] == 0.95
    assert 0 < d["wmb_low"] <= d["within_minus_between"] <= d["wmb_high"]
    # raw percentiles sit below the estimate (resampling adds noise); centred ones hold it
    raw = sp.bootstrap_fit(
        sp.bootstrap_transfer(simulate_margins(T_true, 48, 3.0, 2)),
        H12,
        n_permutations=9,
        centred=False,
    )
    assert raw.spearman_ci[1] - raw.spearman_ci[0] == pytest.approx(planted.spearman_ci[1] - planted.spearman_ci[0])
    assert np.mean(raw.spearman_ci) < np.mean(planted.spearman_ci)
    noise = sp.bootstrap_fit(sp.bootstrap_transfer(simulate_margins(0 * T_true, 48, 3.0, 2)), H12, n_permutations=999)
    assert noise.spearman_ci[0] < 0.05 and noise.fit.mantel_p > 0.05
    uid = HypothesisSpace.from_labels("uid", NAMES, NAMES)
    degenerate = sp.bootstrap_fit(
        sp.bootstrap_transfer(simulate_margins(T_true, 48, 3.0, 2), n_boot=20), uid, n_permutations=99
    )
    assert all(math.isnan(x) for x in degenerate.ari_ci) and "its own label" in degenerate.fit.ari_note


def _test_retest(T_true: np.ndarray, seed: int) -> float:
    """Pearson of two independent full replications' profile spaces: the reliability to estimate."""
    iu = np.triu_indices(T_true.shape[0], 1)
    spaces = [
        sp.symmetrise(sp.bootstrap_transfer(simulate_margins(T_true, 48, 3.0, s), n_boot=1).T.value)[iu]
        for s in (seed, 10_000 + seed)
    ]
    return float(np.corrcoef(*spaces)[0, 1])


def test_split_half_reliability_of_planted_structure_and_of_noise():
    T_true = planted_transfer(CATS, within=2.0, self_transfer=5.0)  # 1.0 gives a ceiling of 0.25 (diagonal excluded)
    ceilings = [
        sp.split_half_reliability(simulate_margins(T_true, 48, 3.0, s), n_splits=50, seed=s).ceiling for s in range(12)
    ]
    known = np.mean([_test_retest(T_true, s) for s in range(12)])
    assert 0.4 < known < 0.9  # the design has structure and noise
    assert np.mean(ceilings) == pytest.approx(known, abs=0.08)
    noise = [
        sp.split_half_reliability(simulate_margins(0 * T_true, 48, 3.0, s), n_splits=50, seed=s).ceiling
        for s in range(12)
    ]
    assert abs(np.mean(noise)) < 0.08
    rel = sp.split_half_reliability(simulate_margins(T_true, 48, 3.0, 0), how="sym", n_splits=10)
    assert (
        rel.space == "T_sym"
        and rel.source == "eval pairs"
        and rel.ceiling == pytest.approx(sp.spearman_brown(rel.split_half))
    )


def test_split_half_with_a_second_tuning_counts_tuning_noise():
    T_true = planted_transfer(CATS, within=1.0, self_transfer=5.0)
    m = simulate_margins(T_true, 48, 3.0, 0)
    same = sp.split_half_reliability(m, n_splits=30, second_tuning=m)
    assert same.source == "eval pairs and tunings"
    assert same.split_half == pytest.approx(sp.split_half_reliability(m, n_splits=30).split_half)
    # a second tuning that learnt a different structure lowers the ceiling
    other = PairMargins.from_arrays(
        m.base, [[m.base[j] + np.random.default_rng(i).normal(0, 3, 48) for j in range(12)] for i in range(12)]
    )
    assert sp.split_half_reliability(m, n_splits=30, second_tuning=other).ceiling < same.ceiling - 0.3
    assert sp.spearman_brown(0.5) == pytest.approx(2 / 3)


def test_self_transfer_intervals_feed_the_generalisation_and_sym_guards():
    # task 0's true self-transfer is 0.3 nats, its per-pair noise 3: its interval includes zero,
    # though 0.3 is above the noise floor; the interval guard, not the floor, leaves it out
    T_true = planted_transfer("aabb", within=0.2, self_transfer=5.0)
    T_true[0, 0] = 0.3
    b = sp.bootstrap_transfer(simulate_margins(T_true, 48, 3.0, seed=3))
    lower = np.diag(b.T.low)
    assert lower[0] <= 0 < lower[1:].min()
    g = sp.generalisation(b.T.value, list("aabb"), self_lower=lower, noise_floor=0.0)
    assert g.excluded == (0,) and g.n_included == 3
    with pytest.warns(sp.SpaceWarning, match="interval includes zero"):
        S = sp.symmetrise(b.T.value, "sym", self_floor=0.0, self_lower=lower)
    assert S[0, 1] == pytest.approx(b.T.value[1, 0] / b.T.value[1, 1])
