"""The one-sentence headline of an analysis (taskspace_core.headline)."""

from __future__ import annotations

import numpy as np

from taskspace_core import spaces
from taskspace_core.headline import Headline, category_headline
from tests.fixtures_spaces import make_space
from tests.sim_spaces import planted_transfer, simulate_margins


def test_sentence_says_whether_the_fit_is_significant_with_its_interval():
    h = Headline("smollm2-135m", 0.312, 0.0021, (0.181, 0.444), 0.7, 12, 48)
    assert h.sentence() == (
        "On smollm2-135m, transfer profiles group by category: Spearman 0.31 (95% CI over eval pairs 0.18–0.44), "
        "Mantel p = 0.002, reliability 0.70 (12 tasks, 48 eval pairs each)."
    )
    weak = Headline("m", 0.17, 0.09, None, None, 12, 48, "no per-pair margins")
    assert weak.sentence() == (
        "On m, transfer profiles do not detectably group by category: Spearman 0.17, Mantel p = 0.090 "
        "(12 tasks, 48 eval pairs each). No interval: no per-pair margins."
    )


def test_headline_from_margins_matches_the_fit_and_its_bootstrap():
    space = make_space("1B", 10**9, 1000, seed=0)  # synthetic-8: categories of two tasks
    labels = space.labels("category")
    cats = "".join(chr(97 + sorted(set(labels)).index(c)) for c in labels)
    margins = simulate_margins(planted_transfer(cats), n_pairs=24, noise_sd=3.0, seed=2)
    T = np.array([[margins.tuned[i][j].mean() - margins.base[j].mean() for j in range(8)] for i in range(8)])
    space.matrices["T"] = T
    h = category_headline(space, margins, n_boot=200, n_permutations=999)
    H = spaces.HypothesisSpace.from_labels("category", space.names, space.labels("category"))
    fi = spaces.bootstrap_fit(spaces.bootstrap_transfer(margins, n_boot=200), H, n_permutations=999)
    assert h is not None and h.spearman == fi.fit.spearman and h.mantel_p == fi.fit.mantel_p
    assert h.ci == fi.spearman_ci and h.note == "" and h.n_eval == 24
    assert h.reliability == spaces.split_half_reliability(margins).ceiling
    bare = category_headline(space, None, "the units are gone", n_permutations=999)
    assert bare is not None and bare.ci is None and bare.spearman == h.spearman
    assert bare.sentence().endswith("No interval: the units are gone.")


def test_margins_of_a_space_without_its_run_config_come_with_the_reason(tmp_path):
    from precompute.margins import space_margins
    from taskspace_core.store import Store

    margins, why = space_margins(make_space("1B", 10**9, 1000, seed=0), Store(tmp_path))
    assert margins is None and "does not keep its run config" in why
