"""Cost of the uncertainty statistics (METHODS s6): bootstrap over eval pairs, fit intervals, split-half.

Simulated per-pair margins (no model time: the margins are what a run stores), for a
12-task space and a 67-task space with 48 eval pairs per task. Prints wall times; asserts
nothing. Run: ``nice .venv/bin/python benchmarks/bench_uncertainty.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from taskspace_core import spaces as sp  # noqa: E402
from tests.sim_spaces import planted_transfer, simulate_margins  # noqa: E402


def _timed(label: str, fn, *args, **kwargs):  # noqa: ANN001, ANN202 - a tiny timing helper
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"  {label:<52s} {time.perf_counter() - t0:7.2f} s")
    return out


def main() -> None:
    for n_tasks, n_cats in ((12, 6), (67, 12)):
        cats = "".join(chr(ord("a") + i % n_cats) for i in range(n_tasks))
        margins = simulate_margins(planted_transfer(cats), n_pairs=48, noise_sd=3.0, seed=0)
        H = sp.HypothesisSpace.from_labels("category", [f"t{i}" for i in range(n_tasks)], list(cats))
        print(f"{n_tasks} tasks x 48 eval pairs ({n_cats} categories):")
        boot = _timed("bootstrap_transfer (1,000 resamples, both metrics)", sp.bootstrap_transfer, margins)
        _timed("fit_hypothesis alone (9,999 permutations)", sp.fit_hypothesis, sp.symmetrise(boot.T.value), H)
        fit = _timed("bootstrap_fit profile (incl. the fit's permutations)", sp.bootstrap_fit, boot, H)
        rel = _timed("split_half_reliability profile (100 splits)", sp.split_half_reliability, margins)
        print(
            f"  -> Spearman {fit.fit.spearman:.3f} [{fit.spearman_ci[0]:.3f}, {fit.spearman_ci[1]:.3f}], "
            f"Mantel p {fit.fit.mantel_p:.4f}; noise ceiling {rel.ceiling:.3f}"
        )


if __name__ == "__main__":
    main()
