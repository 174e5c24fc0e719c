"""Tests for taskspace_core.spaces: hand-computed values and seeded statistical checks."""

from __future__ import annotations

import io
import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kstest, spearmanr

from taskspace_core import spaces as sp
from taskspace_core.spaces import HypothesisSpace, SpaceError, SpaceWarning

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


# ---------------------------------------------------------------------------
# section 6: hypothesis spaces and validation
# ---------------------------------------------------------------------------

NAMES = ["a", "b", "c", "d"]


def test_hypothesis_from_labels():
    H = HypothesisSpace.from_labels("category", NAMES, ["x", "x", "y", "y"])
    np.testing.assert_array_equal(H.matrix, [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]])
    assert H.labels == ("x", "x", "y", "y") and H.is_binary
    H2 = HypothesisSpace.from_labels("category", NAMES, {"a": "x", "b": "x", "c": "y", "d": "y"})
    np.testing.assert_array_equal(H.matrix, H2.matrix)
    with pytest.raises(SpaceError, match="no 'field' label: c"):
        HypothesisSpace.from_labels("field", NAMES, ["x", "x", "", "y"])
    with pytest.raises(SpaceError, match="3 'field' labels for 4 tasks"):
        HypothesisSpace.from_labels("field", NAMES, ["x", "x", "y"])


def _frame(values: list[list[object]], rows: list[str], cols: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(values, index=rows, columns=cols or rows)


GOOD = [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]


def test_uploaded_matrix_ok_reordered_and_from_csv(tmp_path):
    df = _frame(GOOD, NAMES)
    H, warns = HypothesisSpace.from_matrix(df, NAMES, name="my idea")
    assert warns == [] and H.name == "my idea"
    assert np.isnan(np.diag(H.matrix)).all()  # diagonal ignored
    # a 0/1 matrix whose 1s form groups yields labels (so ARI can be computed)
    assert H.labels is not None and H.labels[0] == H.labels[1] != H.labels[2] == H.labels[3]
    # rows/columns in another order are put in task order
    order = ["d", "b", "a", "c"]
    H2, _ = HypothesisSpace.from_matrix(df.loc[order, order], NAMES)
    np.testing.assert_array_equal(H2.matrix, H.matrix)
    path = tmp_path / "h.csv"
    df.to_csv(path)
    H3, _ = HypothesisSpace.from_matrix(str(path), NAMES)
    np.testing.assert_array_equal(H3.matrix, H.matrix)
    H4, _ = HypothesisSpace.from_matrix(io.StringIO(df.to_csv()), NAMES)
    np.testing.assert_array_equal(H4.matrix, H.matrix)


def test_uploaded_matrix_not_square():
    df = pd.DataFrame(np.zeros((4, 3)), index=NAMES, columns=NAMES[:3])
    with pytest.raises(SpaceError, match="4 rows and 3 columns; it must be square"):
        HypothesisSpace.from_matrix(df, NAMES)


def test_uploaded_matrix_name_mismatch_names_the_names():
    df = _frame(GOOD, ["a", "b", "C ", "d"])
    with pytest.raises(SpaceError) as err:
        HypothesisSpace.from_matrix(df, NAMES)
    msg = str(err.value)
    assert "missing tasks: c" in msg and "names that are not tasks: C " in msg
    assert "did you mean 'C ' -> 'c'" in msg
    df = _frame(GOOD, ["a", "b", "c", "zz"])
    with pytest.raises(SpaceError, match="missing tasks: d; names that are not tasks: zz"):
        HypothesisSpace.from_matrix(df, NAMES)


def test_uploaded_matrix_asymmetric_is_symmetrised_with_warning():
    vals = [[0, 0.8, 0.2, 0.0], [0.6, 0, 0.1, 0.0], [0.2, 0.1, 0, 0.5], [0.0, 0.0, 0.5, 0]]
    H, warns = HypothesisSpace.from_matrix(_frame(vals, NAMES), NAMES)
    assert len(warns) == 1 and "not symmetric" in warns[0] and "'a' and 'b'" in warns[0]
    assert H.matrix[0, 1] == pytest.approx((0.8 + 0.6) / 2) == H.matrix[1, 0]
    assert H.labels is None and not H.is_binary


def test_uploaded_matrix_non_numeric():
    vals: list[list[object]] = [[1, 1, 0, 0], [1, 1, "same", 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    with pytest.raises(SpaceError, match="row 'b', column 'c': 'same'"):
        HypothesisSpace.from_matrix(_frame(vals, NAMES), NAMES)


def test_uploaded_matrix_non_numeric_diagonal_is_ignored():
    vals: list[list[object]] = [["-", 1, 0, 0], [1, "-", 0, 0], [0, 0, "-", 1], [0, 0, 1, "-"]]
    H, warns = HypothesisSpace.from_matrix(_frame(vals, NAMES), NAMES)
    assert warns == [] and H.is_binary


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


def test_fit_default_permutations_on_67_tasks():
    rng = np.random.default_rng(0)
    names = [f"t{i}" for i in range(67)]
    H = HypothesisSpace.from_labels("category", names, rng.integers(0, 12, 67))
    X = rng.normal(size=(67, 67))
    r = sp.fit_hypothesis((X + X.T) / 2, H)  # default 9,999 permutations (about 0.3 s; not asserted)
    assert r.n_permutations == 9_999 and 0 < r.mantel_p <= 1


def test_fit_aligns_dataframe_by_name_and_handles_graded_h():
    order = ["c", "a", "d", "b"]
    df = pd.DataFrame(S4, index=NAMES, columns=NAMES).loc[order, order]
    assert sp.fit_hypothesis(df, H4, 99).spearman == pytest.approx(sp.fit_hypothesis(S4, H4, 99).spearman)
    graded = [[0, 3, 1, 0], [3, 0, 2, 1], [1, 2, 0, 2], [0, 1, 2, 0]]
    H, _ = HypothesisSpace.from_matrix(_frame(graded, NAMES), NAMES, name="graded")
    r = sp.fit_hypothesis(S4, H, 99)
    assert np.isfinite(r.spearman) and np.isfinite(r.mantel_p)
    assert math.isnan(r.within_minus_between) and math.isnan(r.ari)


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


# ---------------------------------------------------------------------------
# section 7: scaling, embeddings, Procrustes, trees
# ---------------------------------------------------------------------------


def test_scale_similarity_and_distance():
    S = np.array([[9.0, 4.0, -2.0], [4.0, 9.0, 1.0], [-2.0, 1.0, 9.0]])
    np.testing.assert_allclose(sp.scale_similarity(S), [[1, 1, -0.5], [1, 1, 0.25], [-0.5, 0.25, 1]])
    np.testing.assert_allclose(sp.distance_matrix(S), [[0, 0, 1.5], [0, 0, 0.75], [1.5, 0.75, 0]])
    # already in [-1, 1]: untouched apart from the diagonal
    np.testing.assert_allclose(sp.scale_similarity(S / 10)[0, 1:], [0.4, -0.2])


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


def test_no_warnings_on_clean_input():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sp.symmetrise(T3)
        sp.fit_hypothesis(S4, H4, n_permutations=99)
        sp.linkage_tree(S4, NAMES)
