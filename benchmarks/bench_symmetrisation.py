"""Which symmetric view of T best shows linguistic structure? (METHODS s4; issue 12 item 3)

On the cached BLiMP study run (``bench_first_order.py`` computes it; its exact and its
first-order T) and on a built-in-suite run of similar design (14 paradigms, two from each
of 7 categories, 2 of them as two half tasks), every candidate symmetrisation is scored by

* W-B: mean within-category minus mean between-category similarity, after scaling the
  space to [-1, 1] (``scale_similarity``), one task per paradigm;
* AUC: the chance that a within-category pair is more similar than a between-category
  pair (ties count half), one task per paradigm: scale-free, so comparable across views;
* halves: for each half task, the rank of its other half among all other tasks (1 = its
  nearest neighbour); "top-1" counts halves whose twin is the nearest.

Candidates: the library's ``sym`` and ``profile`` (``profile_diagonal`` include | exclude),
the same profiles of T's columns (``symmetrise(T.T, ...)``: how alike two tasks are as
*targets* of tuning) and the plain mean ``(T + T^T) / 2``.

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_symmetrisation.py [--tiny] [--out F]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

import numpy as np
from _study import HALF, StudySpace, common_args, emit, load, paradigm_view, run_both
from scipy.stats import rankdata

from taskspace_core.spaces.matrices import SpaceWarning, scale_similarity, symmetrise


def _mean(T: np.ndarray) -> np.ndarray:
    S = (T + T.T) / 2.0
    np.fill_diagonal(S, 1.0)
    return S


CANDIDATES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sym": lambda T: symmetrise(T, "sym"),
    "profile, include (rows)": lambda T: symmetrise(T, "profile", profile_diagonal="include"),
    "profile, exclude (rows)": lambda T: symmetrise(T, "profile", profile_diagonal="exclude"),
    "profile, include (cols)": lambda T: symmetrise(T.T, "profile", profile_diagonal="include"),
    "profile, exclude (cols)": lambda T: symmetrise(T.T, "profile", profile_diagonal="exclude"),
    "mean (T+T')/2": _mean,
}


def category_separation(S: np.ndarray, categories: list[str]) -> tuple[float, float]:
    """(W-B on the scaled space, AUC of within- over between-category pairs) over the upper triangle."""
    iu = np.triu_indices(len(categories), k=1)
    same = np.array([categories[i] == categories[j] for i, j in zip(*iu, strict=True)])
    vals = scale_similarity(S)[iu]
    if same.all() or not same.any():
        return float("nan"), float("nan")
    wb = float(vals[same].mean() - vals[~same].mean())
    ranks = rankdata(vals)  # Mann-Whitney U from ranks: ties count half
    n_w, n_b = int(same.sum()), int((~same).sum())
    auc = (ranks[same].sum() - n_w * (n_w + 1) / 2) / (n_w * n_b)
    return wb, float(auc)


def twin_ranks(S: np.ndarray, names: list[str]) -> list[int]:
    """For every half task, the rank of its twin among the other tasks (1 = most similar; ties count up)."""
    out = []
    for i, n in enumerate(names):
        if HALF not in n:
            continue
        stem, side = n.rsplit(HALF, 1)
        j = names.index(f"{stem}{HALF}{'b' if side == 'a' else 'a'}")
        others = np.delete(S[i], i)
        out.append(int((others >= S[i, j]).sum()))
    return out


def table(title: str, full: StudySpace) -> str:
    view = paradigm_view(full)
    lines = [
        f"{title}: {len(view.names)} paradigms ({len(set(view.categories))} categories), "
        f"{len(full.names) - len(view.names)} of them split in halves ({len(full.names)} tasks)",
        f"  {'symmetrisation':26s} {'W-B':>7s} {'AUC':>6s} {'halves top-1':>13s} {'mean rank':>10s}",
    ]
    for name, make in CANDIDATES.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpaceWarning)
            wb, auc = category_separation(make(view.T), view.categories)
            ranks = twin_ranks(make(full.T), full.names)
        top1 = f"{sum(r == 1 for r in ranks)}/{len(ranks)}"
        lines.append(f"  {name:26s} {wb:+7.3f} {auc:6.3f} {top1:>13s} {np.mean(ranks):10.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_args(ap)
    ap.add_argument("--no-run", action="store_true", help="only read the cache (fails if a run is missing)")
    ap.add_argument("--builtin-paradigms", type=int, default=14, help="built-in paradigms (of 14)")
    args = ap.parse_args(argv)
    todo = () if args.no_run else ("exact",)
    blimp = run_both("blimp", args.cache, args.tiny, () if args.no_run else ("exact", "first_order"), args.paradigms)
    builtin = run_both("builtin", args.cache, args.tiny, todo, args.builtin_paradigms)
    parts = [
        table("BLiMP, exact T", load(blimp, "exact")),
        table("BLiMP, first-order T", load(blimp, "first_order")),
        table("built-in suite, exact T", load(builtin, "exact")),
    ]
    text = "\n\n".join(parts)
    return emit(text, args.out)


if __name__ == "__main__":
    sys.exit(main())
