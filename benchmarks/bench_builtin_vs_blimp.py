"""Does the built-in suite behave like BLiMP? SmolLM2 accuracy per mirrored paradigm vs its BLiMP twin.

For every built-in paradigm with a ``mirrors`` tag: accuracy on ``--n`` pairs of it (its eval
split) and on ``--n`` pairs of the BLiMP paradigm it names (that paradigm's eval split).
Prints the table, Spearman rho across mirrored paradigms and the mean |difference|.
Targets: rho >= 0.6, mean |difference| <= 0.12.

    python benchmarks/bench_builtin_vs_blimp.py [--blimp ../shared/blimp] [--n 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from taskspace_core.builtin import load_builtin  # noqa: E402
from taskspace_core.tasks import load_blimp_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blimp", default=str(ROOT.parent / "shared" / "blimp"), help="folder of BLiMP *.jsonl files")
    ap.add_argument("--n", type=int, default=200, help="pairs per paradigm on each side")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--only", default="", help="comma-separated built-in paradigm names (default: all mirrored)")
    args = ap.parse_args(argv)

    from taskspace_core.models import ModelSpec, load_model
    from taskspace_core.scoring import PairScorer, ScoringConfig, task_metrics

    suite = load_builtin()
    mirrored = [t for t in suite if t.tag_dict.get("mirrors")]
    if args.only:
        keep = set(args.only.split(","))
        mirrored = [t for t in mirrored if t.name in keep]
    blimp = load_blimp_dir(args.blimp, sorted({t.tag_dict["mirrors"] for t in mirrored}))
    scorer = PairScorer(load_model(ModelSpec(args.model)), ScoringConfig())

    def accuracy(pairs: tuple) -> float:
        return float(task_metrics(scorer.score_pairs(list(pairs)).margins)["accuracy"])

    t0 = time.time()
    blimp_acc: dict[str, float] = {}
    rows = []
    print(f"{'built-in paradigm':38s} {'BLiMP paradigm':48s} {'ours':>6s} {'BLiMP':>6s} {'diff':>6s}")
    for t in mirrored:
        uid = t.tag_dict["mirrors"]
        if uid not in blimp_acc:
            blimp_acc[uid] = accuracy(blimp[uid].split(args.n, args.n)[1])
        ours = accuracy(t.split(args.n, args.n)[1])
        rows.append((t.name, uid, ours, blimp_acc[uid]))
        print(f"{t.name:38s} {uid:48s} {ours:6.3f} {blimp_acc[uid]:6.3f} {ours - blimp_acc[uid]:+6.3f}", flush=True)
    ours_a = np.array([r[2] for r in rows])
    theirs = np.array([r[3] for r in rows])
    rho = float(spearmanr(ours_a, theirs).statistic) if len(rows) > 2 else float("nan")
    mad = float(np.abs(ours_a - theirs).mean())
    print(f"\nmirrored paradigms: {len(rows)}, pairs per side: {args.n}, model: {args.model}")
    print(f"Spearman rho (ours vs BLiMP): {rho:.3f}   (target >= 0.6)")
    print(f"mean |accuracy difference|:   {mad:.3f}   (target <= 0.12)")
    print(f"mean accuracy: ours {ours_a.mean():.3f}, BLiMP {theirs.mean():.3f}; {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
