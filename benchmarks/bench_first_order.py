"""How well does first-order transfer agree with exact transfer? (METHODS s4b; issue 13 item 2)

Runs the BLiMP study (20 paradigms covering all 13 categories, 1 of them as two half
tasks; see ``_study.py``) with exact and with first-order transfer, in one cache that both
configs share (base and FTGD units are computed once), then prints

* Spearman of T_first_order against T over all entries and over the off-diagonal ones;
* the same after calibrating each first-order row by the exact self-transfer (N transfer
  units instead of N x N: a cheap correction when the update's effect saturates);
* per category, the mean within-category profile similarity of each estimate ("both ways":
  from the exact T and from the first-order T), and each task's profile agreement
  (Pearson of its exact and its first-order row, off the diagonal).

The statistics use one task per paradigm (half ``a`` stands for a split paradigm).
Two studies of cheap corrections read the same cache: ``--points`` takes the gradient at
other points than theta (N more gradients each), ``--corrected`` adds a control variate from
k exact eval pairs per task (per-pair first-order terms: one single-pair gradient per pair).

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_first_order.py \
        [--tiny] [--no-run] [--points] [--corrected] [--out F]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import numpy as np
from _study import HALF, StudySpace, common_args, emit, load, paradigm_view, run_both
from scipy.stats import spearmanr

from taskspace_core.spaces.matrices import symmetrise


def agreement(exact: StudySpace, first: StudySpace) -> dict[str, float]:
    """Spearman of the two estimates over all entries and over the off-diagonal entries."""
    if exact.names != first.names:
        raise ValueError("the two runs hold different tasks")
    off = ~np.eye(len(exact.names), dtype=bool)
    return {
        "all": float(spearmanr(exact.T.ravel(), first.T.ravel())[0]),
        "off_diagonal": float(spearmanr(exact.T[off], first.T[off])[0]),
        "diagonal": float(spearmanr(np.diag(exact.T), np.diag(first.T))[0]),
    }


def row_calibrated(exact: StudySpace, first: StudySpace) -> StudySpace:
    """First-order rows rescaled so each self-transfer matches the exact one (costs N diagonal transfer units).

    Where the update's effect saturates, first-order overshoots a whole row by about the same
    factor; the exact self-transfer measures that factor. Rows whose self-transfers are not
    both positive are left as they are.
    """
    d_ex, d_fo = np.diag(exact.T), np.diag(first.T)
    ok = (d_ex > 0) & (d_fo > 0)
    factor = np.where(ok, d_ex / np.where(ok, d_fo, 1.0), 1.0)
    return StudySpace(first.names, first.categories, first.T * factor[:, None])


def other_points(study, names: list[str]) -> dict[str, np.ndarray]:
    """``delta_i . grad m_j`` with the gradient taken elsewhere than at theta (N more gradients each).

    * ``shared midpoint``: at ``theta + sum_i delta_i / 2`` (one point for all j; its curvature
      term ``delta_i' H_j delta_i / 2`` is the per-pair one plus cross terms of the other updates);
    * ``own half`` / ``own end``: at ``theta + delta_j / 2`` / ``theta + delta_j``, task j's own
      update (exact for the self-transfer's second-order term, a guess for the others).

    Plus ``base``, the cached first-order matrix; rows/cols in ``names`` order. The per-pair
    half-update point ``theta + delta_i / 2`` would cost N x N gradients (as much as exact).
    """
    from precompute.config import load_config
    from precompute.runner import build_plan
    from taskspace_core.ftgd import applied
    from taskspace_core.models import load_model
    from taskspace_core.probing import DeltaStack, eval_gradient
    from taskspace_core.store import Store

    store = Store()
    plan = build_plan(load_config(study.configs["first_order"]), store, load_weights=False)
    units = {(u.kind, u.task): u.key for u in plan.models[0].units}
    results = {n: store.require(units[("ftgd", n)]) for n in names}
    base = np.array([[store.require(units[("egrad", j)])["dots"][i] for j in names] for i in names])
    merged: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in results[names[0]].delta:
        idx = np.concatenate([r.delta[name][0].astype(np.int64) for r in results.values()])
        vals = np.concatenate([r.delta[name][1].astype(np.float64) for r in results.values()])
        uniq, inv = np.unique(idx, return_inverse=True)  # overlapping masks: their halves add up
        merged[name] = (uniq, (np.bincount(inv, weights=vals / 2.0, minlength=len(uniq))).astype(np.float32))

    def scaled(j: str, f: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {k: (ix, (v.astype(np.float32) * f).astype(v.dtype)) for k, (ix, v) in results[j].delta.items()}

    points = {
        "shared midpoint": lambda j: merged,
        "own half": lambda j: scaled(j, 0.5),
        "own end": lambda j: scaled(j, 1.0),
    }
    loaded = load_model(plan.models[0].entry.spec)
    stack = DeltaStack(results)  # the N updates' entries gathered once for all gradients
    out = {"base": base}
    for label, point in points.items():
        M = np.empty((len(names), len(names)))
        for j, name in enumerate(names):
            with applied(loaded, point(name)):
                dots = stack.dots(eval_gradient(loaded, plan.taskset[name], plan.pcfg))
            M[:, j] = [dots[i] for i in names]
        out[label] = M
    return out


def per_pair_terms(study, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per eval pair p of task j: the exact change ``m_p(theta + delta_i) - m_p(theta)`` and the
    first-order ``delta_i . grad m_p`` for every update i, as two [N, N, n_eval] arrays (eval-pair
    order). The exact values come from the cached exact run; the first-order ones cost one
    single-pair gradient per eval pair (their mean over p is the cached first-order column)."""
    from precompute.config import load_config
    from precompute.runner import build_plan
    from taskspace_core.ftgd import _grads_on, selectable_parameters
    from taskspace_core.ftgd.gradients import mean_gradient
    from taskspace_core.models import load_model
    from taskspace_core.probing import DeltaStack
    from taskspace_core.store import Store

    store = Store()
    plans = {e: build_plan(load_config(study.configs[e]), store, load_weights=False) for e in ("exact", "first_order")}
    units = {e: {(u.kind, u.task, u.other): u.key for u in p.models[0].units} for e, p in plans.items()}
    ex, fo = units["exact"], units["first_order"]
    base = {j: store.require(ex[("base", j, None)])["margins"] for j in names}
    exact = np.array([[store.require(ex[("transfer", i, j)])["margins"] - base[j] for j in names] for i in names])
    stack = DeltaStack({n: store.require(fo[("ftgd", n, None)]) for n in names})
    plan = plans["first_order"]
    loaded = load_model(plan.models[0].entry.spec)
    sel = selectable_parameters(loaded.model, plan.pcfg.ftgd.include_embeddings)
    first = np.empty_like(exact)
    for j, name in enumerate(names):
        pairs = plan.taskset[name].split(plan.pcfg.n_tune, plan.pcfg.n_eval)[1]
        for k, pair in enumerate(pairs):
            with _grads_on([p for _, p in sel]):
                grads, _ = mean_gradient(loaded, [p for _, p in sel], [pair], lambda m: m)
                dots = stack.dots({n: g for (n, _), g in zip(sel, grads, strict=True)})
            first[:, j, k] = [dots[i] for i in names]
        cached = [store.require(fo[("egrad", name, None)])["dots"][i] for i in names]
        if not np.allclose(first[:, j].mean(1), cached, rtol=1e-3, atol=1e-6):
            raise RuntimeError(f"per-pair first-order terms of {name} do not average to its cached column")
    return exact, first


def _subset_mean(a: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Mean of a[i, j, S[j]] over each evaluated task j's chosen pairs."""
    return np.take_along_axis(a, np.broadcast_to(S[None], a.shape[:2] + S.shape[1:]), 2).mean(2)


def corrected_report(study, exact_full: StudySpace, ks=(1, 2, 3, 4, 6), draws: int = 50) -> str:
    """First-order plus a control variate: ``T_fo + mean_S(exact - first-order)`` over k eval pairs S of
    each task j (N x N x k pair scorings: k / n_eval of exact transfer's evaluations). Averaged over
    ``draws`` random subsets; beside it, the exact transfer measured on the same k pairs alone."""
    names = exact_full.names
    exact, first = per_pair_terms(study, names)
    keep = [i for i, n in enumerate(names) if not n.endswith(f"{HALF}b")]  # as paradigm_view
    ex = paradigm_view(exact_full)
    sub = np.ix_(keep, keep)
    fo = first.mean(2)
    rng = np.random.default_rng(0)
    n_eval = exact.shape[2]
    lines = [f"first-order + control variate from k of {n_eval} eval pairs ({draws} random subsets; Spearman vs exact)"]
    for label, M in (("first-order alone", fo), ("exact, all pairs (check)", exact.mean(2))):
        a = agreement(ex, StudySpace(ex.names, ex.categories, M[sub]))
        lines.append(f"  {label:34s} all {a['all']:.3f}, off-diagonal {a['off_diagonal']:.3f}")
    for k in ks:
        cv, alone = [], []
        for _ in range(draws):
            S = np.array([rng.permutation(n_eval)[:k] for _ in names])  # one subset per evaluated task
            ex_s, fo_s = (_subset_mean(a, S) for a in (exact, first))
            for out, M in ((cv, fo + ex_s - fo_s), (alone, ex_s)):
                out.append(agreement(ex, StudySpace(ex.names, ex.categories, M[sub])))
        f = lambda rs, key: f"{np.mean([r[key] for r in rs]):.3f}"  # noqa: E731
        lines.append(
            f"  k={k}: corrected all {f(cv, 'all')}, off-diagonal {f(cv, 'off_diagonal')}   |   "
            f"exact on the k pairs alone: all {f(alone, 'all')}, off-diagonal {f(alone, 'off_diagonal')}"
        )
    return "\n".join(lines)


def within_category(sp: StudySpace, how: str = "exclude") -> dict[str, float]:
    """Mean profile similarity (``profile_diagonal=how``) over the within-category pairs of each category."""
    S = symmetrise(sp.T, "profile", profile_diagonal=how)
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(sp.categories):
        by_cat[c].append(i)
    out = {}
    for c, idx in sorted(by_cat.items()):
        if len(idx) > 1:
            out[c] = float(np.mean([S[a, b] for k, a in enumerate(idx) for b in idx[k + 1 :]]))
    return out


def row_agreement(exact: StudySpace, first: StudySpace) -> np.ndarray:
    """Per task: Pearson of its exact and its first-order transfer row, off the diagonal."""
    n = len(exact.names)
    out = np.empty(n)
    for i in range(n):
        keep = np.arange(n) != i
        out[i] = np.corrcoef(exact.T[i, keep], first.T[i, keep])[0, 1]
    return out


def report(exact: StudySpace, first: StudySpace) -> str:
    a = agreement(exact, first)
    lines = [
        f"first-order vs exact transfer on {len(exact.names)} paradigms ({len(set(exact.categories))} categories)",
        f"  Spearman, all {exact.T.size} entries:        {a['all']:.3f}",
        f"  Spearman, {exact.T.size - len(exact.names)} off-diagonal entries: {a['off_diagonal']:.3f}",
        f"  Spearman, {len(exact.names)} self-transfers:       {a['diagonal']:.3f}",
        f"  scale: median |T_fo| / |T| off the diagonal = {_scale_ratio(exact, first):.2f}",
    ]
    if a["off_diagonal"] < 0.85:
        lines.append("  NOTE: off-diagonal agreement is below 0.85 Spearman")
    c = agreement(exact, row_calibrated(exact, first))
    lines.append(
        f"  rows calibrated by the exact self-transfer (N more transfer units): "
        f"Spearman all {c['all']:.3f}, off-diagonal {c['off_diagonal']:.3f}"
    )
    lines.append("")
    lines.append("within-category profile similarity (profile_diagonal=exclude), exact | first-order")
    we, wf = within_category(exact), within_category(first)
    for c in we:
        lines.append(f"  {c:28s} {we[c]:+.3f} | {wf[c]:+.3f}")
    lines.append(f"  {'mean':28s} {np.mean(list(we.values())):+.3f} | {np.mean(list(wf.values())):+.3f}")
    lines.append("")
    rows = row_agreement(exact, first)
    lines.append(
        f"per-task row agreement (Pearson, off the diagonal): median {np.median(rows):.3f}, min {rows.min():.3f}"
    )
    for n, r in sorted(zip(exact.names, rows, strict=True), key=lambda x: x[1])[:5]:
        lines.append(f"  lowest: {n:45s} {r:+.3f}")
    return "\n".join(lines)


def points_report(study, exact_full: StudySpace) -> str:
    M = other_points(study, exact_full.names)
    keep = [i for i, n in enumerate(exact_full.names) if not n.endswith(f"{HALF}b")]  # as paradigm_view
    ex = paradigm_view(exact_full)
    sub = np.ix_(keep, keep)
    lines = ["first-order with the gradient taken at other points (N more gradients each):"]
    for label, A in (
        ("base (as cached)", M["base"]),
        ("shared midpoint only", M["shared midpoint"]),
        ("mean of base and shared midpoint", (M["base"] + M["shared midpoint"]) / 2),
        ("own end only", M["own end"]),
        ("trapezoid: base, own end", (M["base"] + M["own end"]) / 2),
        ("Simpson: base, own half, own end", (M["base"] + 4 * M["own half"] + M["own end"]) / 6),
    ):
        a = agreement(ex, StudySpace(ex.names, ex.categories, A[sub]))
        lines.append(f"  {label:34s} Spearman all {a['all']:.3f}, off-diagonal {a['off_diagonal']:.3f}")
    return "\n".join(lines)


def _scale_ratio(exact: StudySpace, first: StudySpace) -> float:
    off = ~np.eye(len(exact.names), dtype=bool)
    return float(np.median(np.abs(first.T[off])) / max(np.median(np.abs(exact.T[off])), 1e-12))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_args(ap)
    ap.add_argument("--no-run", action="store_true", help="only read the cache (fails if a run is missing)")
    ap.add_argument(
        "--points", action="store_true", help="also the gradient at other points (shared midpoint, own update)"
    )
    ap.add_argument(
        "--corrected", action="store_true", help="also first-order + a control variate from a few exact pairs"
    )
    args = ap.parse_args(argv)
    study = run_both("blimp", args.cache, args.tiny, () if args.no_run else ("exact", "first_order"), args.paradigms)
    exact, first = (paradigm_view(load(study, e)) for e in ("exact", "first_order"))
    text = report(exact, first)
    if args.points:
        text += "\n\n" + points_report(study, load(study, "exact"))
    if args.corrected:
        text += "\n\n" + corrected_report(study, load(study, "exact"))
    return emit(text, args.out)


if __name__ == "__main__":
    sys.exit(main())
