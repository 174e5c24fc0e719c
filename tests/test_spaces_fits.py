"""Tests for taskspace_core.spaces.fits: hand-computed fits and seeded permutation tests."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kstest, spearmanr
from sklearn.metrics import adjusted_rand_score

from taskspace_core import spaces as sp
from taskspace_core.spaces import HypothesisSpace, SpaceError
from tests.test_spaces_hypotheses import NAMES, _frame
from tests.test_spaces_matrices import T3

# ---------------------------------------------------------------------------
# section 6: statistics
# ---------------------------------------------------------------------------

# labels a, b: x; c, d: y. Upper triangle order: ab, ac, ad, bc, bd, cd
S4 = np.array(
    [
        [1.0, 0.9, 0.5, -0.5],
        [0.9, 1.0, 0.6, -0.4],
        [0.5, 0.6, 1.0, 0.2],
        [-0.5, -0.4, 0.2, 1.0],
    ]
)
H4 = HypothesisSpace.from_labels("category", NAMES, ["x", "x", "y", "y"])


def test_fit_by_hand_4x4():
    r = sp.fit_hypothesis(S4, H4, n_permutations=999, seed=1)
    assert (r.level, r.n_tasks, r.n_pairs_upper, r.n_permutations) == ("category", 4, 6, 999)
    # ranks of S: [6, 4, 1, 5, 2, 3] -> centred [2.5, .5, -2.5, 1.5, -1.5, -.5]
    # ranks of H: [5.5, 2.5, 2.5, 2.5, 2.5, 5.5] -> centred [2, -1, -1, -1, -1, 2]
    dot = 2.5 * 2 + 0.5 * -1 + -2.5 * -1 + 1.5 * -1 + -1.5 * -1 + -0.5 * 2
    assert r.spearman == pytest.approx(dot / math.sqrt(17.5 * 12))
    assert r.spearman == pytest.approx(spearmanr(S4[np.triu_indices(4, 1)], H4.matrix[np.triu_indices(4, 1)])[0])
    # within: ab, cd; between: ac, ad, bc, bd
    assert r.within_minus_between == pytest.approx((0.9 + 0.2) / 2 - (0.5 - 0.5 + 0.6 - 0.4) / 4)
    # D = 1 - S: ab .1 merges first; {ab}-c (.5 + .4) / 2 = .45 < c-d .8, so clusters {a, b, c}, {d}.
    # ARI of [0, 0, 0, 1] vs [0, 0, 1, 1]: index = C(2,2) = 1, rows sum 1 + 1, cols 3 + 0, C(4, 2) = 6
    expected_index = 2 * 3 / 6
    assert r.ari == pytest.approx((1 - expected_index) / ((2 + 3) / 2 - expected_index))
    assert r.as_dict()["spearman"] == r.spearman


def test_ari_negative_by_hand():
    # S groups {a, c} and {b, d}, the hypothesis groups {a, b} and {c, d}
    S = np.array([[1, 0, 0.9, 0], [0, 1, 0, 0.8], [0.9, 0, 1, 0.1], [0, 0.8, 0.1, 1.0]])
    # index 0, rows 1 + 1, cols 1 + 1, C(4, 2) = 6
    expected_index = 2 * 2 / 6
    assert sp.fit_hypothesis(S, H4, n_permutations=99).ari == pytest.approx(
        (0 - expected_index) / ((2 + 2) / 2 - expected_index)
    )


def test_mantel_p_matches_exhaustive_permutations():
    iu = np.triu_indices(4, 1)
    s, h = S4[iu], H4.matrix

    def stats(perm: tuple[int, ...]) -> tuple[float, float]:
        hp = h[np.ix_(perm, perm)][iu]
        return spearmanr(s, hp)[0], s[hp == 1].mean() - s[hp == 0].mean()

    rho0, wmb0 = stats((0, 1, 2, 3))
    all_stats = [stats(p) for p in itertools.permutations(range(4))]
    exact_rho = np.mean([r >= rho0 - 1e-12 for r, _ in all_stats])
    exact_wmb = np.mean([w >= wmb0 - 1e-12 for _, w in all_stats])
    r = sp.fit_hypothesis(S4, H4, n_permutations=9_999, seed=0)
    assert r.mantel_p == pytest.approx(exact_rho, abs=0.02)
    assert r.wmb_p == pytest.approx(exact_wmb, abs=0.02)
    # determinism per seed
    assert sp.fit_hypothesis(S4, H4, n_permutations=999, seed=5) == sp.fit_hypothesis(S4, H4, 999, seed=5)


def test_mantel_p_is_uniform_under_null():
    n = 10
    names = [f"t{i}" for i in range(n)]
    rho_p, wmb_p = [], []
    for trial in range(200):
        rng = np.random.default_rng(trial)
        labels = np.array(list("xxxyyyzzzz"))[rng.permutation(n)]
        X = rng.normal(size=(n, n))
        S = (X + X.T) / 2
        r = sp.fit_hypothesis(S, HypothesisSpace.from_labels("category", names, labels), n_permutations=199, seed=trial)
        rho_p.append(r.mantel_p)
        wmb_p.append(r.wmb_p)
    for p in (np.array(rho_p), np.array(wmb_p)):
        assert 0.01 <= np.mean(p < 0.05) <= 0.10
        assert 0.42 <= p.mean() <= 0.58
        assert kstest(p, "uniform").statistic < 0.13


def test_mantel_p_tiny_for_structured_space():
    rng = np.random.default_rng(7)
    names = [f"t{i}" for i in range(12)]
    H = HypothesisSpace.from_labels("category", names, list("aaaabbbbcccc"))
    noise = rng.normal(scale=0.1, size=(12, 12))
    S = H.matrix + (noise + noise.T) / 2
    r = sp.fit_hypothesis(S, H, n_permutations=999, seed=0)
    assert r.mantel_p <= 0.002 and r.wmb_p <= 0.002
    assert r.spearman > 0.7 and r.within_minus_between > 0.8 and r.ari == 1.0


def _planted_67(rng: np.random.Generator, strength: float) -> tuple[np.ndarray, HypothesisSpace]:
    names = [f"t{i}" for i in range(67)]
    H = HypothesisSpace.from_labels("category", names, np.arange(67) % 12)
    X = rng.normal(size=(67, 67))
    return strength * H.matrix + (X + X.T) / 2, H


def test_fit_default_permutations_on_67_tasks_planted_and_noise():
    # planted structure (within-category pairs 0.5 SD higher): every test finds it at the
    # default 9,999 permutations (p = 1 / 10,000: no permutation reaches the observed value)
    S, H = _planted_67(np.random.default_rng(0), strength=0.5)
    r = sp.fit_hypothesis(S, H)
    assert r.n_permutations == 9_999
    assert r.mantel_p == r.wmb_p == 1 / 10_000
    assert r.ari > 0.05 and r.ari_p < 0.01  # weak clusters, but far beyond shuffled labels
    assert r.spearman > 0.1 and r.within_minus_between > 0.3
    # pure noise: p is not small, seed after seed
    ps = np.array(
        [
            [
                getattr(sp.fit_hypothesis(_planted_67(np.random.default_rng(s), 0.0)[0], H, 999, s), k)
                for k in ("mantel_p", "wmb_p", "ari_p")
            ]
            for s in range(1, 9)
        ]
    )
    assert 0.2 < ps.mean() < 0.8 and np.median(ps) > 0.1
    assert (ps > 0.01).mean() >= 0.9


def test_ari_many_matches_scikit_learn():
    rng = np.random.default_rng(8)
    c = rng.integers(0, 4, size=(50, 13))
    lab = rng.integers(0, 3, size=(50, 13))
    expected = [adjusted_rand_score(a, b) for a, b in zip(c, lab, strict=True)]
    np.testing.assert_allclose(sp.fits.ari_many(c, lab), expected, atol=1e-12)


def test_ari_p_matches_exhaustive_permutations():
    S = np.array(
        [
            [1.0, 0.8, 0.1, 0.0, 0.2, 0.1],
            [0.8, 1.0, 0.2, 0.1, 0.0, 0.3],
            [0.1, 0.2, 1.0, 0.7, 0.1, 0.0],
            [0.0, 0.1, 0.7, 1.0, 0.3, 0.2],
            [0.2, 0.0, 0.1, 0.3, 1.0, 0.6],
            [0.1, 0.3, 0.0, 0.2, 0.6, 1.0],
        ]
    )
    labels = list("xxyyxy")  # one task of each pair mislabelled: ARI neither 1 nor 0
    H = HypothesisSpace.from_labels("category", list("abcdef"), labels)
    clusters = sp.cluster_labels(S, 2)
    observed = adjusted_rand_score(labels, clusters)
    exact = np.mean(
        [
            adjusted_rand_score([labels[k] for k in perm], clusters) >= observed - 1e-12
            for perm in itertools.permutations(range(6))
        ]
    )
    r = sp.fit_hypothesis(S, H, n_permutations=9_999, seed=3)
    assert r.ari == pytest.approx(observed) and r.ari_note == ""
    assert r.ari_p == pytest.approx(exact, abs=0.015)
    assert r.ari_p != r.mantel_p  # its own test, not the Spearman's


@pytest.mark.parametrize(
    ("labels", "reason"),
    [(list("abcdef"), "every task has its own label"), (list("aaaaaa"), "every task has the same label")],
)
def test_ari_is_nan_with_reason_for_levels_that_do_not_group(labels, reason):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 6))
    H = HypothesisSpace.from_labels("uid", list("abcdef"), labels)
    r = sp.fit_hypothesis((X + X.T) / 2, H, n_permutations=99)
    # scikit-learn's ARI is 1.0 here (each cut at N or 1 clusters reproduces the labels)
    assert adjusted_rand_score(labels, sp.cluster_labels((X + X.T) / 2, len(set(labels)))) == 1.0
    assert math.isnan(r.ari) and math.isnan(r.ari_p) and reason in r.ari_note


def test_fit_aligns_dataframe_by_name_and_handles_graded_h():
    order = ["c", "a", "d", "b"]
    df = pd.DataFrame(S4, index=NAMES, columns=NAMES).loc[order, order]
    assert sp.fit_hypothesis(df, H4, 99).spearman == pytest.approx(sp.fit_hypothesis(S4, H4, 99).spearman)
    graded = [[0, 3, 1, 0], [3, 0, 2, 1], [1, 2, 0, 2], [0, 1, 2, 0]]
    H, _ = HypothesisSpace.from_matrix(_frame(graded, NAMES), NAMES, name="graded")
    r = sp.fit_hypothesis(S4, H, 99)
    assert np.isfinite(r.spearman) and np.isfinite(r.mantel_p)
    assert math.isnan(r.within_minus_between) and math.isnan(r.ari)
    assert "graded" in r.ari_note


def test_lift_matrix_with_nan_diagonal_works_as_a_task_space():
    rng = np.random.default_rng(2)
    masks = [rng.random(1_000) < 0.05 for _ in range(6)]
    counts = np.stack([sp.tensor_counts(m, [400, 600]) for m in masks])
    lift = sp.overlap_lift(sp.jaccard_matrix(masks), counts, [400, 600])
    H = HypothesisSpace.from_labels("category", list("abcdef"), list("xxyyzz"))
    r = sp.fit_hypothesis(lift, H, n_permutations=99)
    assert np.isfinite([r.spearman, r.mantel_p, r.within_minus_between, r.ari]).all()
    assert sp.mds_embedding(lift).coords.shape == (6, 2)


def test_fit_input_errors():
    with pytest.raises(SpaceError, match="not symmetric"):
        sp.fit_hypothesis(S4 + np.triu(np.ones((4, 4)), 1), H4)
    with pytest.raises(SpaceError, match="3 tasks but the hypothesis has 4"):
        sp.fit_hypothesis(S4[:3, :3], H4)
    with pytest.raises(SpaceError, match="missing tasks: d"):
        sp.fit_hypothesis(pd.DataFrame(S4, index=list("abcz"), columns=list("abcz")), H4)


def test_no_warnings_on_clean_input():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sp.symmetrise(T3)
        sp.fit_hypothesis(S4, H4, n_permutations=99)
        sp.linkage_tree(S4, NAMES)
