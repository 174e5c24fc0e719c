"""Synthetic task spaces for app tests: a realistic series written through the real store.

``prefill_cache(directory)`` is the one function the app tests and the browser test call;
swapping the synthetic results for a tiny real run means replacing only its body.

The series has 2 sizes x 3 checkpoints, 8 tasks in 4 categories (2 fields), and every
matrix a run produces (T, T_first_order, G, J, both lifts), mask distributions over
layers x module types, and tune curves. Category structure grows with size and step, as
the paper's findings say it should, so trends in the views are visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from taskspace_core.results import ModelInfo, SpaceResult, TaskInfo, save_space, space_key
from taskspace_core.store import Store

SERIES = "synthetic"
TASKSET = "synthetic-8"
SIZES = (("135M", 135_000_000), ("360M", 360_000_000))
STEPS = (0, 1000, 2000)
MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "norm")
N_LAYERS = 6

# (name, category, field, tag 'licensor', good, bad); one pair holds markup to test escaping
_TASKS = (
    ("anaphor_gender", "anaphor_agreement", "morphology", "none", "Mary saw herself.", "Mary saw himself."),
    ("anaphor_number", "anaphor_agreement", "morphology", "none", "The boys hurt themselves.", "The boys hurt itself."),
    ("det_noun_1", "determiner_noun_agreement", "morphology", "none", "This cat runs.", "These cat runs."),
    (
        "det_noun_2",
        "determiner_noun_agreement",
        "morphology",
        "none",
        "Those <b>dogs</b> bark.",
        "That <b>dogs</b> bark.",
    ),
    ("sv_agr_1", "subject_verb_agreement", "syntax", "none", "The dog barks.", "The dog bark."),
    ("sv_agr_2", "subject_verb_agreement", "syntax", "none", "The keys are here.", "The keys is here."),
    ("npi_only", "npi_licensing", "syntax", "only", "Only Bill ever left.", "Even Bill ever left."),
    ("npi_question", "npi_licensing", "syntax", "question", "Did anyone leave?", "Anyone did leave."),
)


def _task_infos() -> tuple[TaskInfo, ...]:
    return tuple(
        TaskInfo(
            name=n,
            category=c,
            field=f,
            description=f"synthetic paradigm {n} (=formula test)" if n == "sv_agr_1" else f"synthetic paradigm {n}",
            tags={"licensor": lic},
            example_good=g,
            example_bad=b,
            n_pairs=100,
        )
        for n, c, f, lic, g, b in _TASKS
    )


def _structured(rng: np.random.Generator, cats: np.ndarray, strength: float, noise: float) -> np.ndarray:
    """A symmetric matrix whose within-category block is raised by ``strength``."""
    same = (cats[:, None] == cats[None, :]).astype(float)
    A = rng.normal(0.0, noise, size=same.shape)
    return strength * same + (A + A.T) / 2


def make_space(size: str, n_params: int, step: int, seed: int) -> SpaceResult:
    """One synthetic SpaceResult of the series."""
    rng = np.random.default_rng(seed)
    tasks = _task_infos()
    n = len(tasks)
    cats = np.array([t.category for t in tasks])
    growth = (0.2 + 0.8 * step / STEPS[-1]) * (1.0 if size == SIZES[0][0] else 1.3)
    S = _structured(rng, cats, 1.5 * growth, 0.6)
    T = S + rng.normal(0.0, 0.3, size=(n, n))  # asymmetric
    T[np.diag_indices(n)] = rng.uniform(4.0, 30.0, size=n) * growth + 1.0
    G = np.clip(_structured(rng, cats, 0.4 * growth, 0.15), -1, 1)
    np.fill_diagonal(G, 1.0)
    J = np.clip(0.15 + _structured(rng, cats, 0.08 * growth, 0.02), 0.01, 1)
    np.fill_diagonal(J, 1.0)
    lift_pt = J / 0.05
    lift_u = J / 0.005
    layers = list(range(N_LAYERS))
    mask_distribution = {}
    for k, t in enumerate(tasks):
        counts = rng.poisson(5.0, size=(N_LAYERS, len(MODULES))).astype(float)
        counts[0, 3] += 40 + 5 * k  # o_proj in the first and last layer, as METHODS s5b reports
        counts[-1, 6] += 30
        mask_distribution[t.name] = {"layers": layers, "modules": list(MODULES), "counts": counts.tolist()}
    curves = {
        t.name: {
            "step": list(range(11)),
            "accuracy": [min(1.0, 0.5 + 0.04 * s) for s in range(11)],
            "mean_margin": [0.3 * s for s in range(11)],
        }
        for t in tasks
    }
    label = f"smollm2-{size.lower()}@step{step}"
    model = ModelInfo(
        label=label,
        name_or_path=f"synthetic/smollm2-{size.lower()}",
        revision=f"step{step}",
        step0=step == 0,
        fingerprint=f"fp-{size}-{step}",
        size_label=size,
        step=step,
        n_parameters=n_params,
    )
    return SpaceResult(
        model=model,
        taskset=TASKSET,
        series=SERIES,
        tasks=tasks,
        config={"probe": {"n_tune": 48, "n_eval": 48, "metric": "mean_margin"}, "ftgd": {"steps": 10}},
        metric="mean_margin",
        eval1={"mean_margin": rng.normal(1.0, 0.5, size=n), "accuracy": rng.uniform(0.5, 0.9, size=n)},
        T=T,
        T_first_order=T * 0.8 + rng.normal(0, 0.1, size=(n, n)),
        G=G,
        J=J,
        lift_per_tensor=lift_pt,
        lift_uniform=lift_u,
        mask_distribution=mask_distribution,
        curves=curves,
        n_eval_pairs=48,
        created=1_700_000_000.0 + seed,
    )


def prefill_cache(directory: str | Path) -> list[str]:
    """Write the synthetic series into the store at ``directory``; return the space keys."""
    keys = []
    with Store(directory) as store:
        seed = 0
        for size, n_params in SIZES:
            for step in STEPS:
                seed += 1
                sp = make_space(size, n_params, step, seed)
                key = space_key(sp.model.fingerprint, sp.model.revision, TASKSET, "synthetic-config")
                save_space(store, key, sp)
                keys.append(key)
    return keys


def save_private_space(directory: str | Path, owner: str, secret: str) -> str:
    """A space built from ``owner``'s saved set ``set:<owner>/private`` whose example sentences
    hold ``secret``; returns its key. For tests that another user never sees it."""
    from dataclasses import replace

    base = make_space(SIZES[0][0], SIZES[0][1], STEPS[-1], 99)
    tasks = tuple(replace(t, example_good=f"{secret} {t.name}") for t in base.tasks)
    name = f"{owner}/private"
    sp = replace(base, taskset=name, series="private", tasks=tasks,
                 config={**base.config, "run": {"tasks": [f"set:{name}"]}})  # fmt: skip
    key = space_key(sp.model.fingerprint, sp.model.revision, name, "synthetic-config", "private")
    with Store(directory) as store:
        save_space(store, key, sp)
    return key
