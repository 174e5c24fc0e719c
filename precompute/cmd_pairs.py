"""``pairs``: a task's pairs sorted by margin with per-token log-probs, before and after FTGD.

The pairs are the task's eval split (held out from tuning, as in a task space). With
``--tuned-on T`` the FTGD update of task T is applied: the cached one if any analysis in
the store tuned T on this model (its probe config then also sets the split), otherwise one
computed here with the default config and cached as a runner unit would be. Results are
cached per (model, task, tuned-on, limit) as ``pairs/...`` entries; the app's Pair
inspector reads them.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from precompute.common import add_model_args, fingerprint_or_load, model_spec, table
from precompute.job_process import write_json
from taskspace_core import tasksets
from taskspace_core.models import LoadedModel, ModelSpec, load_model
from taskspace_core.pair_tokens import load_result, pair_frame, token_frame
from taskspace_core.pairfiles import safe_csv_frame
from taskspace_core.results import list_spaces, load_space
from taskspace_core.sources import load_many
from taskspace_core.store import Store, make_key
from taskspace_core.tasks import Task, TaskError, TaskSet

VERSION = 1  # of the cached value's layout


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pairs", help="inspect a task's pairs token by token, before and after FTGD")
    add_model_args(p)
    p.add_argument("--tasks", action="append", required=True, help="task source(s), as for eval and run configs")
    p.add_argument("--task", required=True, help="the task whose pairs to inspect")
    p.add_argument("--tuned-on", default=None, help="also score after FTGD on this task (of the same sources)")
    p.add_argument("--limit", type=int, default=None, help="inspect only the first N pairs of the eval split")
    p.add_argument("--out", default=None, help="write the per-token table to this CSV file")
    p.add_argument("--progress-file", default=None, help=argparse.SUPPRESS)  # for background jobs
    p.set_defaults(func=run)


def _probe_config(**kw: Any):
    from taskspace_core.probing import ProbeConfig

    return ProbeConfig(**kw)


def _configs_in_store(store: Store) -> list:
    """Probe configs of the analyses in the store (where cached FTGD units may come from)."""
    from taskspace_core.ftgd import FTGDConfig
    from taskspace_core.scoring import ScoringConfig

    names = {f.name for f in fields(FTGDConfig)}
    out = []
    for rec in list_spaces(store):
        sp = load_space(store, rec["key"])
        cfg = sp.config if sp is not None else {}
        try:
            ftgd = FTGDConfig(**{k: v for k, v in cfg["ftgd"].items() if k in names})
            scoring = ScoringConfig(reduction=cfg["scoring"]["reduction"])
            pcfg = _probe_config(n_tune=cfg["n_tune"], n_eval=cfg["n_eval"], ftgd=ftgd, scoring=scoring)
        except (KeyError, TypeError, ValueError):
            continue  # written by another version: its units would not match anyway
        if pcfg.ftgd.key() == cfg["ftgd"]:
            out.append(pcfg)
    return out


def ftgd_key(fingerprint: str, spec: ModelSpec, task: Task, pcfg: Any) -> str:
    """The runner's key of task's FTGD unit."""
    from precompute.runner import unit_key

    return unit_key("ftgd", fingerprint, spec.revision, task.content_hash(), pcfg)


def find_ftgd(store: Store, fingerprint: str, spec: ModelSpec, task: Task) -> tuple[Any, str | None]:
    """(probe config, cached FTGD key or None): the default config first, then those of cached analyses."""
    default = _probe_config()
    for pcfg in [default, *_configs_in_store(store)]:
        key = ftgd_key(fingerprint, spec, task, pcfg)
        if store.has(key):
            return pcfg, key
    return default, None


def _compute(
    loaded: LoadedModel, task: Task, tuned: Task | None, pcfg: Any, store: Store, ftgd_cached: str | None, meta: dict
) -> dict[str, Any]:
    from taskspace_core import probing
    from taskspace_core.ftgd import applied
    from taskspace_core.token_scores import pair_tokens

    pairs = task.split(pcfg.n_tune, pcfg.n_eval)[1][: meta.pop("limit")]
    if not pairs:
        raise TaskError(f"task '{task.name}' has no eval pairs to inspect (it has {len(task)} pairs)")
    before = pair_tokens(loaded, pairs, pcfg.scoring)
    after = None
    if tuned is not None:
        key = ftgd_cached or ftgd_key(loaded.fingerprint, loaded.spec, tuned, pcfg)
        result = store.get(key) if ftgd_cached else None
        if result is None:
            print(f"tuning on '{tuned.name}' (FTGD, not in the cache)…")
            t0 = time.perf_counter()
            result = probing.ftgd_unit(loaded, tuned, pcfg)
            store.put(key, result, task=tuned.name, seconds=round(time.perf_counter() - t0, 3), **meta)
        with applied(loaded, result):
            after = pair_tokens(loaded, pairs, pcfg.scoring)
    return {
        "version": VERSION,
        "task": task.name,
        "tuned_on": tuned.name if tuned is not None else None,
        "reduction": pcfg.scoring.reduction,
        "probe": pcfg.key(),
        "before": [p.to_record() for p in before],
        "after": [p.to_record() for p in after] if after is not None else None,
    }


def _pick(taskset: TaskSet, name: str | None) -> Task | None:
    if name is None:
        return None
    if name not in taskset.names:
        raise TaskError(f"no task '{name}' in these sources; tasks: {', '.join(taskset.names[:30])}")
    return taskset[name]


def run(args: argparse.Namespace) -> int:
    progress = Path(args.progress_file) if args.progress_file else None
    if progress:
        write_json(progress, {"state": "running", "done": 0, "total": 1, "updated": time.time()})
    spec = model_spec(args)
    taskset = load_many(args.tasks)
    task, tuned = _pick(taskset, args.task), _pick(taskset, args.tuned_on)
    store = Store()
    fingerprint, loaded = fingerprint_or_load(spec)
    pcfg, ftgd_cached = find_ftgd(store, fingerprint, spec, tuned) if tuned else (_probe_config(), None)
    key = make_key(
        "pairs",
        version=VERSION,
        fp=fingerprint,
        rev=spec.revision,
        task=task.content_hash(),
        tuned=tuned.content_hash() if tuned else None,
        limit=args.limit,
        **pcfg.unit_key("transfer"),
    )
    meta = {"model": spec.label, "fingerprint": fingerprint, "tasks": taskset.name, "sources": list(args.tasks),
            "owners": tasksets.owners_of(args.tasks)}  # fmt: skip
    value = store.get(key)
    if value is None:
        loaded = loaded or load_model(spec)
        value = _compute(loaded, task, tuned, pcfg, store, ftgd_cached, {**meta, "limit": args.limit})
        store.put(key, value, task=task.name, tuned_on=value["tuned_on"], **meta)
        print(f"scored {len(value['before'])} pairs of '{task.name}'; cached as {key}")
    else:
        print(f"cache hit: {key}")
    before, after = load_result(value)
    pairs = pair_frame(before, after, value["reduction"])
    cols = ["rank", "margin", *(["margin_after"] if after else []), "first_good", "first_bad", "sentence_good"]
    print(table(pairs[cols].head(20)))
    if args.out:
        safe_csv_frame(token_frame(before, after, value["reduction"])).to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    if progress:
        write_json(progress, {"state": "done", "done": 1, "total": 1, "message": key, "updated": time.time()})
    return 0
