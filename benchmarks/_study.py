"""The cached runs the agreement and symmetrisation studies read (not a test module).

One study run per suite (``blimp``: 20 BLiMP paradigms covering all 13 categories;
``builtin``: 14 built-in paradigms, two from each of 7 categories). A few paradigms enter
the run as two disjoint half tasks (``<name>__a``, ``<name>__b``, written as a ``file:``
source to the cache folder, outside the repository), so a symmetrisation can be asked to
find a paradigm's other half as its nearest neighbour. Each suite has an ``exact`` and a
``first_order`` config; they differ only in ``probe.transfer``, so their base and FTGD units
are the same cache entries and the second run computes only its own transfer units.

``--tiny`` swaps in a random-init tiny Llama and 4 paradigms (one split), for developing.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from _common import ROOT, SHARED_BLIMP, save_tiny_model

DEFAULT_CACHE = Path("/work/cache-study")
HALF = "__"  # a half task is named <paradigm>__a / <paradigm>__b

# Two paradigms from each of the 7 largest categories, one from each of the other 6.
BLIMP_20 = (
    "anaphor_gender_agreement", "anaphor_number_agreement",  # anaphor_agreement
    "causative", "transitive",  # argument_structure
    "principle_A_c_command", "principle_A_domain_1",  # binding
    "determiner_noun_agreement_1", "determiner_noun_agreement_irregular_1",  # determiner_noun_agreement
    "adjunct_island", "wh_island",  # island_effects
    "npi_present_1", "sentential_negation_npi_licensor_present",  # npi_licensing
    "regular_plural_subject_verb_agreement_1", "distractor_agreement_relational_noun",  # subject_verb_agreement
    "existential_there_subject_raising",  # control_raising
    "ellipsis_n_bar_1",  # ellipsis
    "wh_questions_object_gap",  # filler_gap_dependency
    "irregular_past_participle_verbs",  # irregular_forms
    "superlative_quantifiers_1",  # quantifiers
    "animate_subject_trans",  # s-selection
)  # fmt: skip
BLIMP_SPLIT = ("determiner_noun_agreement_1",)
BUILTIN_14 = (
    "anaphor_gender_name", "anaphor_number",
    "reflexive_c_command", "reflexive_local_antecedent",
    "demonstrative_noun_number", "demonstrative_adjective_noun",
    "that_vs_wh_complete_clause", "wh_vs_that_gap",
    "past_vs_participle_verb", "participle_vs_past_adjective",
    "npi_ever_negation", "npi_ever_only",
    "sva_verb_changes", "sva_attractor_of_phrase",
)  # fmt: skip
BUILTIN_SPLIT = ("demonstrative_noun_number", "npi_ever_negation")
TINY_4 = ("anaphor_number_agreement", "determiner_noun_agreement_1", "determiner_noun_agreement_2", "npi_present_1")

# Sized so both suites (21 + 16 tasks, i.e. 697 exact transfer units) fit in ~30 min on a
# busy 2-core machine (two niced one-thread runs side by side): measured there, SmolLM2
# scored ~0.24 s per eval pair and unit, and an FTGD unit's tune curve (n_tune pairs scored
# after every step) was half its cost. Exact transfer is the bulk, so eval splits are small
# (12 pairs; both estimates see the same pairs, so the agreement is not diluted by it).
PROBE = {"n_tune": 16, "n_eval": 12, "metric": "mean_margin"}
FTGD = {"mask_fraction": 0.01, "mask_pairs": 16, "steps": 10, "lr": 2.0e-4, "batch_size": 8}
TINY_PROBE = {"n_tune": 8, "n_eval": 8, "metric": "mean_margin"}
TINY_FTGD = {"mask_fraction": 0.05, "mask_pairs": 4, "steps": 2, "lr": 1.0e-3, "batch_size": 4}


@dataclass(frozen=True)
class Study:
    """One suite's study run: where its configs are, and which tasks are halves of which paradigm."""

    suite: str
    cache: Path
    configs: dict[str, Path]  # "exact" | "first_order" -> config file
    split: tuple[str, ...]


def _halves(task) -> list[tuple[str, str, str, str]]:
    """Rows of two disjoint halves of a paradigm, alternating in its own (hashed) split order."""
    ordered = sorted(task.pairs, key=lambda p: p.split_key(task.name))
    return [(p.good, p.bad, f"{task.name}{HALF}{'ab'[k % 2]}", task.category) for k, p in enumerate(ordered)]


def _write_halves(tasks, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sentence_good", "sentence_bad", "task", "category"])
        for t in tasks:
            w.writerows(_halves(t))


def prepare(
    suite: str, cache: Path = DEFAULT_CACHE, tiny: bool = False, blimp: Path = SHARED_BLIMP, n_paradigms: int = 20
) -> Study:
    """Write the suite's half-task file and its two configs under ``cache`` (nothing is computed).

    ``n_paradigms`` keeps the first paradigms of the suite's list (pairs of one category come
    first, so a cut keeps whole categories).
    """
    from taskspace_core.sources import load_tasks

    root = cache / ("tiny" if tiny else "full")
    root.mkdir(parents=True, exist_ok=True)
    if suite == "blimp":
        names, split = (TINY_4, TINY_4[1:2]) if tiny else (BLIMP_20[:n_paradigms], BLIMP_SPLIT)
        source = f"blimp:{blimp}"
    elif suite == "builtin":
        names, split = (BUILTIN_14[:4], BUILTIN_14[:1]) if tiny else (BUILTIN_14[:n_paradigms], BUILTIN_SPLIT)
        split = tuple(n for n in split if n in names)
        source = "builtin"
    else:
        raise ValueError(f"unknown suite {suite!r}; use blimp or builtin")
    whole = [n for n in names if n not in split]
    halves = root / f"{suite}_halves.csv"
    _write_halves(load_tasks(f"{source}:{','.join(split)}"), halves)
    model = {"name": str(save_tiny_model(root / "tiny-model")), "size": "tiny"} if tiny else {"name": "smollm2-135m"}
    configs = {}
    for estimate in ("exact", "first_order"):
        cfg = {
            "name": f"study_{suite}_{estimate}",
            "series": f"study-{suite}",
            "models": [model],
            "tasks": [f"{source}:{','.join(whole)}", f"file:{halves}"],
            "methods": ["transfer"],
            "probe": {**(TINY_PROBE if tiny else PROBE), "transfer": estimate},
            "ftgd": TINY_FTGD if tiny else FTGD,
            "device": "cpu",
            "dtype": "float32",
        }
        configs[estimate] = root / f"{suite}_{estimate}.yaml"
        configs[estimate].write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return Study(suite, root, configs, tuple(split))


def environment(study: Study) -> dict[str, str]:
    """The environment of a study run: its own cache; the offline model from the shared model folder."""
    env = {**os.environ, "TASKSPACE_CACHE": str(study.cache)}
    shared_models = Path("/work/cache-default/models")
    if "TASKSPACE_MODEL_DIR" not in env and (shared_models / "smollm2-135m" / "config.json").exists():
        env["TASKSPACE_MODEL_DIR"] = str(shared_models)
    return env


def run(study: Study, estimate: str, quiet: bool = True) -> None:
    """``precompute run`` of one config (a cache hit costs only the plan)."""
    cmd = [sys.executable, "-m", "precompute", "run", "--config", str(study.configs[estimate])]
    subprocess.run(cmd + (["--quiet"] if quiet else []), cwd=ROOT, env=environment(study), check=True)


@dataclass(frozen=True)
class StudySpace:
    names: list[str]
    categories: list[str]
    T: np.ndarray


def load(study: Study, estimate: str) -> StudySpace:
    """The assembled transfer matrix of a finished run (``T`` or ``T_first_order``)."""
    os.environ.update({k: v for k, v in environment(study).items() if k.startswith("TASKSPACE_")})
    from precompute.config import load_config
    from precompute.runner import build_plan, iter_spaces
    from taskspace_core.store import Store

    store = Store()
    plan = build_plan(load_config(study.configs[estimate]), store, load_weights=False)
    space = next(iter_spaces(plan, store), None)
    if space is None:
        raise RuntimeError(f"{study.configs[estimate]} is not computed yet; run it first")
    T = space.matrices["T" if estimate == "exact" else "T_first_order"]
    return StudySpace([t.name for t in space.tasks], [t.category for t in space.tasks], np.asarray(T, dtype=float))


def paradigm_view(sp: StudySpace) -> StudySpace:
    """One task per paradigm: half ``a`` stands for a split paradigm, half ``b`` is left out."""
    keep = [i for i, n in enumerate(sp.names) if not n.endswith(f"{HALF}b")]
    names = [sp.names[i].removesuffix(f"{HALF}a") for i in keep]
    return StudySpace(names, [sp.categories[i] for i in keep], sp.T[np.ix_(keep, keep)])


def run_both(
    suite: str, cache: Path, tiny: bool, estimates: tuple[str, ...] = ("exact", "first_order"), n_paradigms: int = 20
) -> Study:
    study = prepare(suite, cache, tiny, n_paradigms=n_paradigms)
    for estimate in estimates:
        run(study, estimate)
    return study


def common_args(ap) -> None:
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="study cache (outside the repository)")
    ap.add_argument("--tiny", action="store_true", help="a tiny random-init model on 4 paradigms (for developing)")
    ap.add_argument("--out", type=Path, default=None, help="also write the printed tables here")
    ap.add_argument("--paradigms", type=int, default=20, help="BLiMP paradigms (the first of the 20)")


def emit(text: str, out: Path | None) -> int:
    """Print a study's tables and, with ``--out``, keep them in a file too."""
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    return 0
