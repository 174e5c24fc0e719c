"""Power of the category Mantel test for candidate default designs, and each design's ETA (METHODS s6, "Design").

Noise and effect are measured from the per-pair margins of a cached run (the trained model of
the default series, e.g. the default analysis in ``$TASKSPACE_CACHE``); unit times come from
the same store (the plan's measured means, as the runner's ETA uses them) and from the unit
kinds' first guesses (``seconds=`` in the method registry). Scoring units cost time in
proportion to their eval pairs (timed: 12 and 48 pairs, no fixed part worth counting); an FTGD
unit in proportion to the pairs it takes gradients of (``mask_pairs`` + steps x batch).
Prints tables; asserts nothing. Run:
``TASKSPACE_CACHE=/work/cache-default nice .venv/bin/python benchmarks/bench_power.py`` (add
``--config FILE`` to measure from that config's cached units before its space is assembled).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from precompute.margins import plan_margins, space_margins  # noqa: E402
from precompute.runner import build_plan, unit_seconds  # noqa: E402
from taskspace_core import methods  # noqa: E402
from taskspace_core.configs import load_config  # noqa: E402
from taskspace_core.results import list_spaces, load_space  # noqa: E402
from taskspace_core.spaces import (  # noqa: E402
    FitResult,
    HypothesisSpace,
    PairMargins,
    fit_hypothesis,
    symmetrise_stack,
)
from taskspace_core.spaces.power import Design, UnitSeconds, design_seconds, noise_from_margins, power  # noqa: E402
from taskspace_core.store import Store  # noqa: E402

QUIET_REFERENCE_MIN = 14.7  # the previous default on a quiet 2-core CPU (benchmarks/bench_probing.py, README)
# (categories, paradigms per category, eval pairs, FTGD steps at a fixed lr x steps)
CANDIDATES = [
    (6, 2, 48, 10),  # the previous default
    (6, 2, 24, 10),
    (4, 3, 32, 10),
    (6, 3, 12, 10),
    (4, 4, 12, 10),
    (4, 4, 16, 10),
    (3, 5, 16, 10),
    (3, 6, 12, 10),
    (4, 4, 24, 5),
    (5, 4, 8, 5),
    (4, 5, 8, 5),
    (8, 2, 16, 5),
]


def _ftgd_pairs(cfg: dict, steps: int) -> int:
    f = cfg.get("ftgd", {})
    return int(f.get("mask_pairs", 32)) + steps * int(f.get("batch_size", 8))


def _grouped(categories: list[str]) -> list[str]:
    """The categories with an effect (two tasks or more), in the order of ``NoiseModel.effects``."""
    return [c for c in sorted(set(categories)) if categories.count(c) > 1]


def _observed_fit(margins: PairMargins, names: list[str], categories: list[str]) -> FitResult:
    n = len(names)
    T = np.array([[margins.tuned[i][j].mean() - margins.base[j].mean() for j in range(n)] for i in range(n)])
    H = HypothesisSpace.from_labels("category", names, categories)
    return fit_hypothesis(symmetrise_stack(T[None])[0], H)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", default="smollm2-default")
    ap.add_argument("--config", help="measure from this config's cached units instead of an assembled space")
    ap.add_argument("--sims", type=int, default=400)
    ap.add_argument("--budget-min", type=float, default=15.0)
    ap.add_argument("--models", type=int, default=2, help="models per design (SmolLM2 and its step 0)")
    args = ap.parse_args()

    store = Store()
    if args.config:  # the units of a config's first model, before its space is assembled
        cfg = load_config(args.config)
        plan = build_plan(cfg, store, load_weights=False)
        names = plan.taskset.names
        margins, why = plan_margins(plan.models[0], names, store)
        label, categories, run = plan.models[0].entry.spec.label, [plan.taskset[t].category for t in names], cfg.raw
    else:
        recs = [r for r in list_spaces(store) if r.get("series") == args.series and r.get("step") is None]
        space = load_space(store, recs[0]["key"]) if recs else None
        if space is None:
            sys.exit(f"no assembled space of series {args.series!r} (trained model) in {store.directory}")
        margins, why = space_margins(space, store)
        label, names, categories = space.model.label, space.names, space.labels("category")
        run = space.config.get("run", {})
    if margins is None:
        sys.exit(f"no per-pair margins for {label}: {why}")
    noise = noise_from_margins(margins, categories)
    steps0 = int(run.get("ftgd", {}).get("steps", 10))
    print(f"noise and effect measured on {label}, {len(names)} tasks x {noise.n_eval} eval pairs:")
    print(
        f"  within - between transfer by category "
        f"{', '.join(f'{c} {e:.2f}' for c, e in zip(_grouped(categories), noise.effects, strict=True))}\n  "
        f"(mean {noise.delta:.2f}, SE {noise.delta_se:.2f}); between mean {noise.mu:.2f}; self "
        f"{min(noise.self_transfer):.1f}..{max(noise.self_transfer):.1f}\n"
        f"  SDs: tuned-task {noise.sd_row:.3f}, eval-task {noise.sd_col:.3f}, cell {noise.sd_cell:.3f}; per pair "
        f"{noise.pair_sd:.3f} (+ shared by tunings {noise.pair_shared_sd:.3f}) -> cell SE at {noise.n_eval} pairs "
        f"{noise.pair_sd / noise.n_eval**0.5:.3f}"
    )
    observed = _observed_fit(margins, names, categories)
    k, m = len(set(categories)), len(names) // len(set(categories))
    if k * m == len(names):  # balanced: does the model reproduce the run's own fit?
        own = power(noise, Design(k, m, noise.n_eval), n_simulations=args.sims)
        print(
            f"  observed fit: Spearman {observed.spearman:.3f}, Mantel p {observed.mantel_p:.4f}; the model's "
            f"{Design(k, m, noise.n_eval)}: mean Spearman {own.mean_spearman:.3f}, power {own.power:.2f}"
        )

    measured = unit_seconds(store)
    guesses = {k.name: k.seconds for k in methods.kinds()}
    cost = {}
    for label, secs in (("registry", guesses), ("measured", measured)):
        per_step_pairs = _ftgd_pairs(run, steps0)
        cost[label] = (secs["ftgd"] / per_step_pairs, secs["base"] / noise.n_eval)
        print(
            f"unit seconds ({label}): base {secs['base']:.2f}, transfer {secs['transfer']:.2f}, ftgd {secs['ftgd']:.2f}"
        )

    print(
        f"\npower of the Spearman Mantel test (T_profile vs category, alpha 0.05, {args.sims} simulations; "
        f"x{args.models} models for the ETA):"
    )
    head = f"{'design':<36s} {'N':>3s} {'within':>6s} {'ETA reg':>7s} {'ETA meas':>8s} {'quiet':>6s} {'power':>11s}"
    head += f" {'rho':>6s}"
    print(head + f" {'power@0.5d':>10s} {'power@d+SE':>10s} {'incl. diag':>10s}")

    def etas(d: Design, steps: int) -> list[float]:
        out = []
        for per_pair_ftgd, per_pair_score in cost.values():
            secs = UnitSeconds(ftgd=per_pair_ftgd * _ftgd_pairs(run, steps), score_pair=per_pair_score)
            out.append(design_seconds(d, secs, args.models) / 60)
        return out

    ref = etas(Design(*CANDIDATES[0][:3]), CANDIDATES[0][3])[1]
    for k, m, n_eval, steps in CANDIDATES:
        d = Design(k, m, n_eval)
        eta = etas(d, steps)
        quiet = eta[1] / ref * QUIET_REFERENCE_MIN
        res = power(noise, d, n_simulations=args.sims)
        half = power(noise.with_effect(0.5), d, n_simulations=args.sims).power
        up = 1 + noise.delta_se / abs(noise.delta) if noise.delta else 1.0
        plus = power(noise.with_effect(up), d, n_simulations=args.sims).power
        incl = power(noise, d, n_simulations=args.sims, profile_diagonal="include").power
        within = k * m * (m - 1) // 2
        fits = " " if quiet <= args.budget_min else "*"
        print(
            f"{str(d) + f', {steps} steps':<36s} {d.n_tasks:>3d} {within:>6d} {eta[0]:>7.1f} {eta[1]:>8.1f} "
            f"{quiet:>5.1f}{fits} "
            f"{res.power:>5.2f}±{res.power_se:.2f} {res.mean_spearman:>6.2f} {half:>10.2f} {plus:>10.2f} {incl:>10.2f}"
        )
    print(
        "(power: T_profile, diagonal excluded (the default from 4 tasks); incl. diag: profile_diagonal=include)\n"
        f"(quiet: the measured ETA scaled so that the previous default takes its measured {QUIET_REFERENCE_MIN} min "
        f"on a quiet 2-core CPU; * over the {args.budget_min:g}-min budget)"
    )


if __name__ == "__main__":
    main()
