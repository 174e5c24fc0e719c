"""Cost of the uncertainty statistics (METHODS s6): bootstrap over eval pairs, fit intervals, split-half.

Simulated per-pair margins (no model time: the margins are what a run stores), for a
12-task space and a 67-task space with 48 eval pairs per task. Prints wall times; asserts
nothing. The second part is what the runner adds to each space it assembles (margins,
intervals, split-half reliability; :mod:`taskspace_core.space_uncertainty`) against the
plain assembly of T from the same units and against the run's model time (the registry's
per-unit guesses for SmolLM2 on 2 CPU cores).
Run: ``nice .venv/bin/python benchmarks/bench_uncertainty.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from taskspace_core import codec, methods  # noqa: E402
from taskspace_core import space_uncertainty as unc  # noqa: E402
from taskspace_core import spaces as sp  # noqa: E402
from tests.sim_spaces import planted_transfer, simulate_margins  # noqa: E402


def _timed(label: str, fn, *args, **kwargs):  # noqa: ANN001, ANN202 - a tiny timing helper
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"  {label:<52s} {time.perf_counter() - t0:7.2f} s")
    return out


def _units(margins: sp.PairMargins, names: list[str]) -> tuple[dict, dict]:
    """Base and transfer unit values as the runner caches them (margins plus their metrics)."""
    from taskspace_core.scoring import task_metrics

    base = {t: {"task": t, "margins": margins.base[j], **task_metrics(margins.base[j])} for j, t in enumerate(names)}
    tr = {
        (a, b): {"task": b, "margins": margins.tuned[i][j], **task_metrics(margins.tuned[i][j])}
        for i, a in enumerate(names)
        for j, b in enumerate(names)
    }
    return base, tr


def assembly_cost() -> None:
    from taskspace_core.configs import ProbeConfig
    from taskspace_core.probing import assemble
    from taskspace_core.tasks import MinimalPair, Task

    print("What assembling a space adds (per space; model time from the registry's SmolLM2 guesses):")
    for n_tasks, n_cats in ((12, 6), (67, 12)):
        cats = "".join(chr(ord("a") + i % n_cats) for i in range(n_tasks))
        margins = simulate_margins(planted_transfer(cats), n_pairs=48, noise_sd=3.0, seed=0)
        names = [f"t{i}" for i in range(n_tasks)]
        tasks = [Task(n, (MinimalPair("a b", "b a"),)) for n in names]
        base, tr = _units(margins, names)
        t0 = time.perf_counter()
        T = assemble(tasks, base, {}, tr, ProbeConfig())["T"]
        plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        pm = unc.pair_margins(names, base, tr)
        u = unc.compute_uncertainty([base[t]["margins"] for t in names], pm, "mean_margin")
        extra = time.perf_counter() - t0
        t0 = time.perf_counter()
        unc.compute_uncertainty([base[t]["margins"] for t in names], pm, "mean_margin", tuning=(pm, pm))
        with_tuning = time.perf_counter() - t0
        size_plain, size_unc = len(codec.encode(T)), len(codec.encode({"pm": pm, "u": u}))
        blob = codec.encode({"pm": pm, "u": u})
        t0 = time.perf_counter()
        codec.decode(blob)
        dec = time.perf_counter() - t0
        model = n_tasks * (methods.kind("base").seconds + methods.kind("ftgd").seconds)
        model += n_tasks**2 * methods.kind("transfer").seconds
        print(f"  {n_tasks} tasks: plain assembly of T {plain * 1e3:7.1f} ms; margins + intervals + split-half "
              f"{extra:6.2f} s ({extra / plain:,.0f}x the plain assembly, {100 * extra / model:.3f}% of "
              f"~{model:,.0f} s model time); with the tuning halves' reliability {with_tuning:6.2f} s")  # fmt: skip
        print(f"    stored: T {size_plain / 1e3:,.0f} kB, margins + intervals {size_unc / 1e3:,.0f} kB "
              f"(read back in {dec * 1e3:.0f} ms)")  # fmt: skip


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
    assembly_cost()
