"""Placement of added tasks (taskspace_core.spaces.placement) on planted structures and on noise."""

from __future__ import annotations

import numpy as np
import pytest

from taskspace_core.spaces import SpaceError, symmetrise
from taskspace_core.spaces.placement import (
    added_tasks,
    best_category,
    nearest_neighbours,
    place_tasks,
    transfer_replicates,
)
from tests.sim_spaces import planted_transfer, simulate_margins

CATS = "aaabbbcccddd"  # 12 reference tasks in 4 categories


def _with_copy(T_ref: np.ndarray, k: int) -> np.ndarray:
    """T over the reference tasks plus one added task that behaves exactly like task k."""
    n = T_ref.shape[0]
    T = np.zeros((n + 1, n + 1))
    T[:n, :n] = T_ref
    T[n, :n], T[:n, n] = T_ref[k], T_ref[:, k]
    T[n, n] = T_ref[k, k]
    return T


def _planted(k: int, noise_sd: float, seed: int = 0, within: float = 1.0):
    T_true = _with_copy(planted_transfer(CATS, within=within), k)
    margins = simulate_margins(T_true, n_pairs=48, noise_sd=noise_sd, seed=seed)
    names = [f"t{i}" for i in range(len(CATS))] + ["mine"]
    labels = list(CATS) + ["my own"]
    return margins, names, labels


@pytest.mark.parametrize("how", ["profile", "sym"])
@pytest.mark.parametrize("k", [1, 7])
def test_a_noisy_copy_of_task_k_lands_next_to_k_and_in_its_category(how: str, k: int) -> None:
    margins, names, labels = _planted(k, noise_sd=1.0, seed=k)
    T0, reps = transfer_replicates(margins, how, n_boot=300, seed=1)
    S = symmetrise(T0, how)
    (pl,) = place_tasks(S, names, ["mine"], labels, how, reps)
    assert pl.task == "mine" and pl.n_boot == 300 and pl.note == ""
    top = pl.neighbours[0]
    assert top.task == f"t{k}", [n.task for n in pl.neighbours[:3]]
    assert top.low <= top.similarity <= top.high and top.high > top.low
    assert top.nearest_share > 0.5  # the copy's nearest neighbour in most resamples
    sims = [n.similarity for n in pl.neighbours]
    assert sims == sorted(sims, reverse=True) and len(sims) == len(CATS)
    fit = pl.category
    assert fit is not None and fit.category == CATS[k] and fit.runner_up != CATS[k]
    assert fit.margin == pytest.approx(fit.mean_similarity - fit.runner_up_similarity)
    assert fit.mean_similarity == pytest.approx(max(fit.scores.values()))
    assert fit.support > 0.95 and fit.margin_low > 0  # the margin's interval excludes a tie
    assert fit.p_value < 0.05  # the floor: a random grouping reunites category a's 3 tasks with p = 4/220


def test_category_scores_by_hand_and_the_reference_excludes_the_task() -> None:
    names = ["a1", "a2", "b1", "b2", "x"]
    S = np.eye(5)
    S[4, :4] = S[:4, 4] = [0.9, 0.5, 0.1, 0.3]
    fit = best_category(S, names, "x", ["A", "A", "B", "B", "A"], names, n_permutations=99)
    assert fit.scores == pytest.approx({"A": 0.7, "B": 0.2})  # x's own label 'A' and S[x, x] = 1 not counted
    assert (fit.category, fit.runner_up, fit.margin) == ("A", "B", pytest.approx(0.5))
    assert np.isnan(fit.support) and np.isnan(fit.margin_low)
    nn = nearest_neighbours(S, names, "x")
    assert [n.task for n in nn] == ["a1", "a2", "b2", "b1"] and np.isnan(nn[0].low)


def test_permutation_p_is_calibrated_on_noise() -> None:
    """A task with no relation to any category: p < 0.05 in about 5% of spaces."""
    rng = np.random.default_rng(3)
    names = [f"t{i}" for i in range(13)]
    labels = list(CATS) + ["z"]
    ps = []
    for _ in range(300):
        A = rng.normal(size=(13, 13))
        S = (A + A.T) / 2
        ps.append(
            best_category(S, names, "t12", labels, names[:12], n_permutations=199, seed=int(rng.integers(1e9))).p_value
        )
    rate = np.mean(np.array(ps) < 0.05)
    assert 0.01 <= rate <= 0.10, rate
    assert 0.35 < np.mean(ps) < 0.65


def test_support_and_intervals_shrink_with_more_signal() -> None:
    weak, strong = (_planted(4, noise_sd=sd, seed=5, within=w) for sd, w in ((6.0, 0.3), (1.0, 1.0)))
    out = {}
    for name, (margins, names, labels) in (("weak", weak), ("strong", strong)):
        T0, reps = transfer_replicates(margins, "profile", n_boot=300, seed=2)
        out[name] = place_tasks(symmetrise(T0), names, ["mine"], labels, "profile", reps)[0]
    w, s = out["weak"], out["strong"]
    assert w.category.support < s.category.support
    width = {k: v.neighbours[0].high - v.neighbours[0].low for k, v in out.items()}
    assert width["weak"] > width["strong"]


def test_transfer_replicates_point_t_is_the_mean_margin_change() -> None:
    margins, _, _ = _planted(0, noise_sd=1.0)
    T0, reps = transfer_replicates(margins, "sym", n_boot=50, seed=0)
    by_hand = np.array([[margins.tuned[i][j].mean() - margins.base[j].mean() for j in range(13)] for i in range(13)])
    assert np.allclose(T0, by_hand)
    assert reps.shape == (50, 13, 13) and np.allclose(reps, np.swapaxes(reps, 1, 2))
    assert not np.allclose(reps[0], reps[1])  # resamples differ


def test_several_added_tasks_and_bad_input() -> None:
    names = ["a1", "a2", "b1", "b2", "x", "y"]
    S = np.eye(6)
    S[4, 2] = S[2, 4] = 0.8
    S[5, 0] = S[0, 5] = 0.6
    S[4, 5] = S[5, 4] = 0.95  # the two added tasks are closest to each other
    got = place_tasks(S, names, ["x", "y"], ["A", "A", "B", "B", "?", "?"], "G")
    assert [p.category.category for p in got] == ["B", "A"]  # each placed against the reference tasks only
    assert got[0].neighbours[0].task == "y" and got[0].neighbours[0].added
    assert added_tasks(names[:4], names) == ["x", "y"]
    with pytest.raises(SpaceError, match="lacks tasks"):
        added_tasks(["a1", "zz"], names)
    one_label = place_tasks(S, names, ["x", "y"], ["A", "A", "A", "A", "?", "?"], "G")[0]
    assert one_label.category is None and "two or more" in one_label.note and one_label.neighbours
    with pytest.raises(SpaceError, match="not in this space"):
        nearest_neighbours(S, names, "nope")
    with pytest.raises(SpaceError, match="Replicate spaces"):
        nearest_neighbours(S, names, "x", S_reps=np.zeros((3, 5, 5)))
