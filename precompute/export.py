"""Export a computed config: every matrix and statistic as CSV + JSON, with a manifest."""

from __future__ import annotations

import json
import platform
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

import taskspace_core
from precompute.runner import Plan, iter_spaces
from taskspace_core import methods, spaces
from taskspace_core import space_uncertainty as unc
from taskspace_core.pairfiles import safe_csv_frame
from taskspace_core.results import SpaceResult, symmetric_views
from taskspace_core.store import Store


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def _matrix_csv(path: Path, M: np.ndarray, names: list[str]) -> None:
    safe_csv_frame(pd.DataFrame(M, index=names, columns=names)).to_csv(path, float_format="%.6g")


def space_statistics(space: SpaceResult, n_permutations: int = 9999, seed: int = 0) -> list[dict]:
    """Fit of every symmetric view to every hypothesis level (METHODS s6), with the bootstrap intervals
    (``*_ci_lo`` / ``*_ci_hi``) and noise ceiling of the transfer views (see :func:`space_uncertainty.fit_row`)."""
    rows = []
    boot = unc.space_bootstrap(space)  # once: every transfer view and level fits the same resamples
    for view, S in symmetric_views(space).items():
        for level in space.levels():
            H = spaces.HypothesisSpace.from_labels(level, space.names, space.labels(level))
            rows.append({"view": view, **unc.fit_row(space, view, S, H, n_permutations, seed=seed, boot=boot)})
    return rows


def export_space(space: SpaceResult, out: Path, n_permutations: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    names = space.names
    files = []
    mats = {methods.export_name(k): M for k, M in space.matrices.items()}
    for name, M in {**mats, **symmetric_views(space)}.items():
        M = np.asarray(M)
        if M.ndim == 3:  # a stack of task spaces (one per layer): one file each
            for layer, S in enumerate(M):
                _matrix_csv(out / f"{name}_{layer:02d}.csv", S, names)
                files.append(f"{name}_{layer:02d}.csv")
        else:
            _matrix_csv(out / f"{name}.csv", M, names)
            files.append(f"{name}.csv")
    tasks = pd.DataFrame([{**t.tags, **{k: getattr(t, k) for k in ("name", "category", "field")}} for t in space.tasks])
    for metric, values in space.eval1.items():
        tasks[f"base_{metric}"] = values
        iv = unc.base_interval(space, metric)
        if iv is not None:
            tasks[f"base_{metric}_lo"], tasks[f"base_{metric}_hi"] = iv
    cats = space.labels("category")
    T = space.T if space.T is not None else space.T_first_order
    summary: dict = {"model": space.model.label, "n_tasks": len(names), "n_eval_pairs": space.n_eval_pairs}
    if T is not None:
        tasks["generalisation"] = spaces.generalisation_scores(T, cats)
        summary["generalisation"] = spaces.model_generalisation(T, cats)  # ratio of means, guarded
        summary["generalisation_detail"] = spaces.generalisation(T, cats).as_dict()
    if space.T is not None and (cells := unc.t_interval_frame(space, space.T)) is not None:
        safe_csv_frame(cells).to_csv(out / "T_intervals.csv", index=False, float_format="%.6g")
        files.append("T_intervals.csv")
    rel = unc.reliability_rows(space)
    if rel:
        safe_csv_frame(pd.DataFrame(rel)).to_csv(out / "reliability.csv", index=False)
        files.append("reliability.csv")
    summary["reliability"] = rel
    summary["uncertainty_note"] = (space.uncertainty or {}).get("note", "")
    if space.lift_per_tensor is not None:
        d = spaces.distributedness(space.lift_per_tensor, cats)
        summary["distributedness"] = d.as_dict()
    safe_csv_frame(tasks).to_csv(out / "tasks.csv", index=False)
    stats = space_statistics(space, n_permutations)
    safe_csv_frame(pd.DataFrame(stats)).to_csv(out / "statistics.csv", index=False)
    (out / "statistics.json").write_text(json.dumps({"fits": stats, "summary": summary}, indent=1, default=float))
    files += ["tasks.csv", "statistics.csv", "statistics.json"]
    return {"dir": out.name, "files": files, "fingerprint": space.model.fingerprint}


def export_plan(plan: Plan, store: Store, out: Path, n_permutations: int = 9999) -> Path:
    from importlib.metadata import version

    out.mkdir(parents=True, exist_ok=True)
    series = list(iter_spaces(plan, store))
    entries = {}
    for sp in series:
        entries[sp.model.label] = export_space(sp, out / _slug(sp.model.label), n_permutations)
    if len(series) > 1:
        views = [symmetric_views(sp) for sp in series]
        common = set.intersection(*(set(v) for v in views))
        stab = {v: spaces.stability([vw[v] for vw in views]).as_dict() for v in sorted(common)}
        (out / "stability.json").write_text(json.dumps(stab, indent=1, default=float))
    manifest = {
        "config": plan.config.raw,
        "config_digest": plan.config.digest(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {
            "taskspace": taskspace_core.__version__,
            "torch": version("torch"),
            "transformers": version("transformers"),
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "models": {mp.entry.spec.label: mp.fingerprint for mp in plan.models},
        "tasks": {t.name: t.content_hash() for t in plan.taskset},
        "seeds": {"statistics": 0, "permutations": n_permutations, "ftgd": plan.config.probe_config().ftgd.seed},
        "spaces": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
    return out
