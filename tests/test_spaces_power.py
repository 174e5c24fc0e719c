"""Tests for taskspace_core.spaces.power: the simulated power of the category Mantel test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskspace_core import spaces as sp
from taskspace_core.spaces import SpaceError
from taskspace_core.spaces.power import (
    Design,
    NoiseModel,
    UnitSeconds,
    design_seconds,
    mantel_p_values,
    noise_from_margins,
    power,
    simulate_transfer,
)
from tests.sim_spaces import planted_transfer, simulate_margins

# the planted space of tests/sim_spaces.py: within-category transfer 1, between 0, self 5, pair noise only
PLANTED = NoiseModel(
    mu=0.0, effects=(1.0,), self_transfer=(5.0,), sd_row=0.0, sd_col=0.0, sd_cell=0.0, pair_sd=3.0, pair_shared_sd=0.0
)


def test_batched_p_values_equal_fit_hypothesis_space_by_space():
    d = Design(3, 3, 3)  # noisy enough that the p-values differ
    S = sp.symmetrise_stack(simulate_transfer(PLANTED, d, 6, np.random.default_rng(1)))
    rho, p = mantel_p_values(S, d.labels, n_permutations=499, seed=7)
    H = sp.HypothesisSpace.from_labels("category", [f"t{i}" for i in range(d.n_tasks)], d.labels)
    for b in range(6):
        fit = sp.fit_hypothesis(S[b], H, n_permutations=499, seed=7)
        assert rho[b] == pytest.approx(fit.spearman)
        assert p[b] == fit.mantel_p  # the same permutations, not just the same distribution
    assert len(set(p.tolist())) > 1


def _brute_force_power(design: Design, n_sims: int, alpha: float, diagonal: str) -> float:
    """Per-pair margins drawn and taken through T, symmetrise and fit_hypothesis, one space at a time."""
    cats = "".join(chr(ord("a") + k) for k in range(design.categories) for _ in range(design.per_category))
    H = sp.HypothesisSpace.from_labels("category", [f"t{i}" for i in range(design.n_tasks)], list(cats))
    hits = 0
    for s in range(n_sims):
        m = simulate_margins(planted_transfer(cats), n_pairs=design.n_eval, noise_sd=3.0, seed=1000 + s)
        T = np.array([[m.tuned[i][j].mean() - m.base[j].mean() for j in range(m.n_tasks)] for i in range(m.n_tasks)])
        hits += (
            sp.fit_hypothesis(sp.symmetrise(T, profile_diagonal=diagonal), H, n_permutations=199, seed=s).mantel_p
            <= alpha
        )
    return hits / n_sims


# designs of intermediate power (about 0.5) under each setting, where a wrong noise scale would show;
# exclusion leaves one shared column per within-category pair at 3 per category, so it needs more pairs
@pytest.mark.parametrize(("diagonal", "design"), [("include", Design(3, 3, 3)), ("exclude", Design(3, 3, 16))])
def test_power_matches_a_brute_force_count_within_monte_carlo_error(diagonal: str, design: Design):
    fast = power(PLANTED, design, n_simulations=600, n_permutations=199, profile_diagonal=diagonal)  # type: ignore[arg-type]
    slow = _brute_force_power(design, 250, 0.05, diagonal)
    assert 0.2 < slow < 0.9
    se = math.sqrt(slow * (1 - slow) / 250 + fast.power_se**2)
    assert abs(fast.power - slow) < 3.5 * se, (fast.power, slow)


def test_zero_effect_gives_power_near_alpha():
    noisy = NoiseModel(0.1, (0.0,), (2.0, 1.0, 6.0), 0.3, 0.3, 0.2, 3.0, 1.0)
    res = power(noisy, Design(4, 3, 24), alpha=0.05, n_simulations=2000, n_permutations=199)
    assert abs(res.power - 0.05) < 3.5 * math.sqrt(0.05 * 0.95 / 2000)
    assert abs(res.mean_spearman) < 0.03


def test_one_strong_category_has_less_power_than_the_same_mean_effect_everywhere():
    uneven = PLANTED.with_effect(0.0)
    uneven = NoiseModel(**{**uneven.__dict__, "effects": (3.0, 0.0, 0.0)})  # mean effect 1, as PLANTED
    d = Design(3, 3, 3)
    assert uneven.delta == pytest.approx(PLANTED.delta)
    kw = {"n_simulations": 400, "n_permutations": 199, "profile_diagonal": "include"}  # mid power at this design
    assert power(uneven, d, **kw).power + 0.1 < power(PLANTED, d, **kw).power  # type: ignore[arg-type]


def test_power_rises_with_eval_pairs_and_effect():
    kw = {"n_simulations": 300, "n_permutations": 199}
    few = power(PLANTED, Design(3, 3, 2), **kw).power  # type: ignore[arg-type]
    many = power(PLANTED, Design(3, 3, 32), **kw).power  # type: ignore[arg-type]
    big = power(PLANTED.with_effect(3.0), Design(3, 3, 2), **kw).power  # type: ignore[arg-type]
    assert few + 0.2 < many and few + 0.2 < big


def test_noise_is_measured_from_per_pair_margins():
    cats = "aaabbbcccddd"
    T_true = planted_transfer(cats, within=0.8, self_transfer=4.0) + 0.3  # mu = 0.3 between categories
    rng = np.random.default_rng(3)
    n, P = len(cats), 400
    base = rng.normal(0.0, 2.0, (n, P))
    shared = rng.normal(0.0, 1.5, (n, P))  # each eval pair's response to any tuning
    tuned = base[None] + T_true[:, :, None] + shared[None] + rng.normal(0.0, 2.5, (n, n, P))
    nm = noise_from_margins(sp.PairMargins.from_arrays(base, tuned), list(cats))
    assert nm.pair_sd == pytest.approx(2.5, rel=0.03)
    assert nm.pair_shared_sd == pytest.approx(1.5, rel=0.1)
    assert nm.delta == pytest.approx(0.8, abs=3 * nm.delta_se) and nm.delta_se < 0.15
    assert len(nm.effects) == 4 and max(abs(e - 0.8) for e in nm.effects) < 0.3
    assert np.allclose(nm.self_transfer, 4.0, atol=0.6) and nm.mu == pytest.approx(0.3, abs=0.3)
    assert nm.sd_cell < 0.1 and nm.sd_row < 0.15 and nm.n_eval == P


def test_cost_model_and_bad_designs():
    secs = UnitSeconds(ftgd=10.0, score_pair=0.02, unit=0.1)
    d = Design(4, 3, 25)
    assert design_seconds(d, secs, n_models=2) == pytest.approx(2 * (12 * 10.0 + (12 + 144) * (0.1 + 0.5)))
    with pytest.raises(SpaceError, match="at least 2 categories"):
        Design(1, 4, 24)
    with pytest.raises(SpaceError, match="must group"):
        noise_from_margins(simulate_margins(planted_transfer("abcd"), 4, 1.0, 0), list("abcd"))
