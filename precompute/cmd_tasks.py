"""``python -m precompute tasks SPEC``: look at a task source, or export it as upload-format CSVs."""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

from taskspace_core.tasks import Task, TaskError, TaskSet

BASE_COLUMNS = ("sentence_good", "sentence_bad", "task", "category", "field")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="show or export a task source (e.g. the built-in paradigm suite)")
    p.add_argument("spec", help="task source: builtin | builtin:<p1,p2,...>")
    p.add_argument("--show", type=int, default=0, metavar="N", help="print N sample pairs per paradigm")
    p.add_argument("--export", default=None, metavar="DIR", help="write one upload-format CSV per paradigm into DIR")
    p.add_argument("--seed", type=int, default=0, help="seed for picking the pairs --show prints")
    p.set_defaults(func=run)


def _load(spec: str) -> TaskSet:
    try:
        from taskspace_core.sources import load_tasks
    except ImportError:  # sources.py not there yet: built-in specs still work
        load_tasks = None
    if load_tasks is not None:
        return load_tasks(spec)
    kind, _, rest = spec.partition(":")
    if kind != "builtin":
        raise TaskError(f"task source '{spec}' is not understood; use builtin or builtin:<p1,p2,...>")
    from taskspace_core.builtin import load_builtin

    names = [n.strip() for n in rest.split(",") if n.strip()] or None
    return load_builtin(names)


def tag_columns(taskset: TaskSet) -> list[str]:
    """Extra columns after the base ones: description first, then every tag any task has."""
    tags = sorted({k for t in taskset for k, _ in t.tags} - {"description"})
    return ["description", *tags]


def write_csv(task: Task, path: Path, extra: list[str]) -> None:
    tags = task.tag_dict
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*BASE_COLUMNS, *extra])
        for p in task.pairs:
            cells = [task.description if c == "description" else tags.get(c, "") for c in extra]
            w.writerow([p.good, p.bad, task.name, task.category, task.field, *cells])


def run(args: argparse.Namespace) -> int:
    try:
        taskset = _load(args.spec)
    except TaskError as e:
        print(f"error: {e}")
        return 2
    for w in taskset.warnings:
        print(f"warning: {w}")
    if args.export:
        out = Path(args.export)
        out.mkdir(parents=True, exist_ok=True)
        extra = tag_columns(taskset)
        for t in taskset:
            write_csv(t, out / f"{t.name}.csv", extra)
        print(f"wrote {len(taskset)} CSV files ({sum(len(t) for t in taskset)} pairs) to {out}")
    if args.show or not args.export:
        n = args.show or 0
        for t in taskset:
            mirrors = t.tag_dict.get("mirrors")
            print(f"{t.name}  [{t.category} / {t.field}]  {len(t)} pairs" + (f"  mirrors {mirrors}" if mirrors else ""))
            if t.description:
                print(f"  {t.description}")
            rng = random.Random(f"{t.name}:{args.seed}")
            for p in rng.sample(t.pairs, min(n, len(t))):
                print(f"    + {p.good}\n    - {p.bad}")
    return 0
