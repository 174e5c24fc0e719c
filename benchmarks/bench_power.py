"""Power of the category Mantel test for candidate default designs, and each design's ETA (METHODS s6, "Design").

Noise and effect are measured from the per-pair margins of a cached run (the trained model of
the default series, e.g. the default analysis in ``$TASKSPACE_CACHE``); unit times come from
the same store (the plan's measured means, as the runner's ETA uses them) and from the unit
kinds' first guesses (``seconds=`` in the method registry). Scoring units cost time in
proportion to their eval pairs (timed: 12 and 48 pairs, no fixed part worth counting); an FTGD
unit in proportion to the pairs it takes gradients of (``mask_pairs`` + steps x batch).
Prints tables; asserts nothing. Run:
``TASKSPACE_CACHE=/work/cache-default nice .venv/bin/python benchmarks/bench_power.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from precompute.margins import space_margins  # noqa: E402
from precompute.runner import unit_seconds  # noqa: E402
from taskspace_core import methods  # noqa: E402
from taskspace_core.results import list_spaces, load_space  # noqa: E402
from taskspace_core.spaces.power import Design, UnitSeconds, design_seconds, noise_from_margins, power  # noqa: E402
from taskspace_core.store import Store  # noqa: E402

# (categories, paradigms per category, eval pairs, FTGD steps at a fixed lr x steps)
CANDIDATES = [
    (6, 2, 48, 10),  # the previous default
    (6, 2, 24, 10),
    (4, 3, 24, 10),
    (4, 3, 32, 10),
    (5, 3, 16, 10),
    (6, 3, 12, 10),
    (4, 4, 12, 10),
    (4, 3, 32, 5),
    (5, 3, 24, 5),
    (6, 3, 16, 5),
    (4, 4, 16, 5),
    (8, 2, 16, 5),
]


def _ftgd_pairs(cfg: dict, steps: int) -> int:
    f = cfg.get("ftgd", {})
    return int(f.get("mask_pairs", 32)) + steps * int(f.get("batch_size", 8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", default="smollm2-default")
    ap.add_argument("--sims", type=int, default=400)
    ap.add_argument("--budget-min", type=float, default=15.0)
    ap.add_argument("--models", type=int, default=2, help="models per design (SmolLM2 and its step 0)")
    args = ap.parse_args()

    store = Store()
    recs = [r for r in list_spaces(store) if r.get("series") == args.series and r.get("step") is None]
    space = load_space(store, recs[0]["key"]) if recs else None
    if space is None:
        sys.exit(f"no assembled space of series {args.series!r} (trained model) in {store.directory}")
    margins, why = space_margins(space, store)
    if margins is None:
        sys.exit(f"no per-pair margins for {space.model.label}: {why}")
    noise = noise_from_margins(margins, space.labels("category"))
    run = space.config.get("run", {})
    steps0 = int(run.get("ftgd", {}).get("steps", 10))
    print(f"noise and effect measured on {space.model.label}, {len(space.names)} tasks x {noise.n_eval} eval pairs:")
    print(
        f"  within - between transfer delta = {noise.delta:.4f} (SE {noise.delta_se:.4f}); between mean "
        f"{noise.mu:.4f}, self {noise.mu_self:.4f}\n"
        f"  SDs: tuned-task {noise.sd_row:.4f}, eval-task {noise.sd_col:.4f}, "
        f"cell {noise.sd_cell:.4f}, self {noise.sd_self:.4f}; per pair {noise.pair_sd:.4f} "
        f"(+ shared by tunings {noise.pair_shared_sd:.4f}) -> cell SE at {noise.n_eval} pairs "
        f"{noise.pair_sd / noise.n_eval**0.5:.4f}"
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
    head = f"{'design':<36s} {'N':>3s} {'within':>6s} {'ETA reg':>7s} {'ETA meas':>8s} {'power':>11s} {'rho':>6s}"
    print(head + f" {'power@0.5d':>10s} {'power@d+SE':>10s}")
    for k, m, n_eval, steps in CANDIDATES:
        d = Design(k, m, n_eval)
        etas = []
        for per_pair_ftgd, per_pair_score in cost.values():
            secs = UnitSeconds(ftgd=per_pair_ftgd * _ftgd_pairs(run, steps), score_pair=per_pair_score)
            etas.append(design_seconds(d, secs, args.models) / 60)
        res = power(noise, d, n_simulations=args.sims)
        half = power(noise.with_effect(0.5), d, n_simulations=args.sims).power
        plus = power(noise.with_effect(1 + noise.delta_se / abs(noise.delta)), d, n_simulations=args.sims).power
        within = k * m * (m - 1) // 2
        fits = " " if etas[0] <= args.budget_min else "*"
        print(
            f"{str(d) + f', {steps} steps':<36s} {d.n_tasks:>3d} {within:>6d} {etas[0]:>6.1f}{fits} {etas[1]:>8.1f} "
            f"{res.power:>5.2f}±{res.power_se:.2f} {res.mean_spearman:>6.2f} {half:>10.2f} {plus:>10.2f}"
        )
    print(f"(* over the {args.budget_min:g}-min budget by the registry's unit times)")


if __name__ == "__main__":
    main()
