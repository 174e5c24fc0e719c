"""Representation similarity on SmolLM2 with six BLiMP paradigms (two from each of three categories).

Prints the mean within- vs between-category cosine of the task space R (all layers
concatenated) and of each layer's space, and the seconds per task (forward passes only).

    .venv/bin/python benchmarks/bench_representation.py [--n-eval 48]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import require_blimp

from taskspace_core.configs import ProbeConfig
from taskspace_core.methods import Assembly, representation
from taskspace_core.models import ModelSpec, load_model
from taskspace_core.tasks import load_blimp_dir

PARADIGMS = (
    "determiner_noun_agreement_1", "determiner_noun_agreement_2",
    "regular_plural_subject_verb_agreement_1", "regular_plural_subject_verb_agreement_2",
    "anaphor_gender_agreement", "anaphor_number_agreement",
)  # fmt: skip


def within_between(S: np.ndarray, cats: list[str]) -> tuple[float, float]:
    iu = np.triu_indices(len(cats), 1)
    same = np.array([cats[i] == cats[j] for i, j in zip(*iu, strict=True)])
    vals = S[iu]
    return float(vals[same].mean()), float(vals[~same].mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-eval", type=int, default=48)
    args = ap.parse_args()
    tasks = list(load_blimp_dir(require_blimp(), list(PARADIGMS)))
    pcfg = ProbeConfig(n_tune=48, n_eval=args.n_eval)
    lm = load_model(ModelSpec("smollm2-135m", device="cpu"))
    t0 = time.perf_counter()
    rep = {t.name: representation.rep_unit(lm, t, pcfg) for t in tasks}
    secs = (time.perf_counter() - t0) / len(tasks)
    mats = representation._assemble(Assembly(tasks, pcfg, {"rep": rep}))
    cats = [t.category for t in tasks]
    print(f"SmolLM2-135M, {len(tasks)} BLiMP paradigms, {args.n_eval} eval pairs each; categories: {sorted(set(cats))}")
    w, b = within_between(mats["R"], cats)
    print(f"R (all layers concatenated): within-category cosine {w:.3f}, between {b:.3f}, difference {w - b:+.3f}")
    for layer, S in enumerate(mats["R_layers"]):
        w, b = within_between(S, cats)
        print(f"  layer {layer + 1:2d}: within {w:.3f}  between {b:.3f}  ({w - b:+.3f})")
    print(f"{secs:.1f} s per task (forward passes of {2 * args.n_eval} sentences)")


if __name__ == "__main__":
    main()
