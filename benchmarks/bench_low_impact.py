"""Is FTGD low-impact? Target gain vs change of held-out LM loss, FTGD against conventional fine-tuning.

METHODS.md s3: for each task, tune on its tune split and report (a) the gain of the target
task's eval mean margin and (b) the change of the LM loss (mean NLL per token) on held-out
general text: the good sentences of the *other* tasks' eval splits. Baseline: Adam on the
LM loss of the good sentences, all parameters, same steps / lr / batch.

    python benchmarks/bench_low_impact.py [--steps 10] [--lr 2e-4] [--n-eval 48] [--threads 1]

It reports, it does not assert. Defaults: SmolLM2 and 6 BLiMP paradigms from ../shared/blimp.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from taskspace_core import ftgd, probing  # noqa: E402
from taskspace_core.models import ModelSpec, load_model  # noqa: E402
from taskspace_core.scoring import PairScorer  # noqa: E402
from taskspace_core.tasks import load_blimp_dir  # noqa: E402

PARADIGMS = [
    "anaphor_gender_agreement",
    "anaphor_number_agreement",
    "determiner_noun_agreement_1",
    "determiner_noun_agreement_2",
    "regular_plural_subject_verb_agreement_1",
    "regular_plural_subject_verb_agreement_2",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blimp", default=str(Path(__file__).resolve().parents[2] / "shared" / "blimp"))
    ap.add_argument("--paradigms", nargs="*", default=PARADIGMS)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--mask-pairs", type=int, default=32)
    ap.add_argument("--n-eval", type=int, default=48)
    ap.add_argument("--heldout-per-task", type=int, default=24, help="good sentences per other task for LM loss")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    lm = load_model(ModelSpec("smollm2-135m"))
    tasks = list(load_blimp_dir(args.blimp, args.paradigms).tasks)
    fcfg = ftgd.FTGDConfig(steps=args.steps, lr=args.lr, batch_size=args.batch, mask_pairs=args.mask_pairs)
    cfg = probing.ProbeConfig(n_eval=args.n_eval, ftgd=fcfg)
    splits = {t.name: t.split(cfg.n_tune, cfg.n_eval) for t in tasks}
    scorer = PairScorer(lm, cfg.scoring)

    print(
        f"model {lm.spec.label}, {len(tasks)} tasks, steps {args.steps}, lr {args.lr}, batch {args.batch}, "
        f"k {fcfg.mask_fraction}, eval pairs {args.n_eval}, torch threads {torch.get_num_threads()}"
    )
    header = (
        f"{'task':42s} {'base':>7s} | {'FTGD gain':>9s} {'dLM':>8s} {'s':>5s} | {'conv gain':>9s} {'dLM':>8s} {'s':>5s}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for t in tasks:
        tune, ev = splits[t.name]
        heldout = [p.good for o in tasks if o.name != t.name for p in splits[o.name][1][: args.heldout_per_task]]
        base_margin = float(scorer.score_pairs(ev).margins.mean())
        base_lm = ftgd.lm_loss(lm, heldout)

        t0 = time.perf_counter()
        res = ftgd.run_ftgd(lm, tune, fcfg)
        with ftgd.applied(lm, res):
            f_margin = float(scorer.score_pairs(ev).margins.mean())
            f_lm = ftgd.lm_loss(lm, heldout)
        f_sec = time.perf_counter() - t0

        t0 = time.perf_counter()
        with ftgd.conventional_finetune(lm, tune, steps=args.steps, lr=args.lr, batch_size=args.batch):
            c_margin = float(scorer.score_pairs(ev).margins.mean())
            c_lm = ftgd.lm_loss(lm, heldout)
        c_sec = time.perf_counter() - t0

        row = (f_margin - base_margin, f_lm - base_lm, c_margin - base_margin, c_lm - base_lm)
        rows.append(row)
        print(
            f"{t.name:42s} {base_margin:7.2f} | {row[0]:+9.2f} {row[1]:+8.4f} {f_sec:5.0f} | "
            f"{row[2]:+9.2f} {row[3]:+8.4f} {c_sec:5.0f}",
            flush=True,
        )
    m = np.array(rows).mean(axis=0)
    print("-" * len(header))
    print(f"{'mean':42s} {'':7s} | {m[0]:+9.2f} {m[1]:+8.4f} {'':5s} | {m[2]:+9.2f} {m[3]:+8.4f}")
    print(
        "gain = change of the target task's eval mean margin (nats); dLM = change of held-out LM loss "
        "(nats/token; + is worse)"
    )


if __name__ == "__main__":
    main()
