"""Task sources by spec string, as the CLI, configs and the app name them.

- ``builtin`` or ``builtin:p1,p2``      the project's own paradigm suite
- ``blimp:/dir`` or ``blimp:/dir:p1,p2`` BLiMP's original *.jsonl files in a directory
- ``hub:blimp`` or ``hub:blimp:p1,p2``  BLiMP from the Hugging Face hub (online only)
- ``set:<name>`` or ``set:<name>@vN``   a task set saved from the app (latest or a given version,
                                        see :mod:`taskspace_core.tasksets`)
- ``file:/path.csv`` or a bare path     a user's CSV / TSV / JSONL of minimal pairs
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from taskspace_core.tasks import TaskError, TaskSet, load_blimp_dir, load_blimp_hub

PAIR_FILE_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".ndjson")


def _names(part: str | None) -> list[str] | None:
    if not part:
        return None
    return [n.strip() for n in part.split(",") if n.strip()]


def _allowed(path: str, what: str) -> str:
    """``path`` if it may be read; in server mode only below a data root (runners check too, not only the page)."""
    from taskspace_core.allowlist import check_data_path

    why = check_data_path(path, what)
    if why:
        raise TaskError(why)
    return path


def load_tasks(spec: str) -> TaskSet:
    """Load the task set a spec string names (see the module docstring)."""
    spec = spec.strip()
    kind, _, rest = spec.partition(":")
    if kind == "builtin":
        from taskspace_core.builtin import load_builtin

        return load_builtin(_names(rest))
    if kind == "blimp":
        if not rest:
            raise TaskError("blimp: needs a directory, e.g. --tasks blimp:../shared/blimp")
        directory, _, names = rest.partition(":")
        return load_blimp_dir(_allowed(directory, "BLiMP folder"), _names(names))
    if kind == "hub":
        dataset, _, names = rest.partition(":")
        if dataset != "blimp":
            raise TaskError(f"hub task source '{dataset}' is not known; use hub:blimp")
        return load_blimp_hub(_names(names))
    if kind == "set":
        from taskspace_core import tasksets

        saved = tasksets.resolve(rest) if rest else None
        if saved is None:
            raise TaskError(f"no saved task set '{rest}'; saved sets: {', '.join(tasksets.list_sets()) or 'none'}")
        return _load_file(saved.path, saved.name)
    if kind == "file" or spec.lower().endswith(PAIR_FILE_SUFFIXES):
        path = Path(_allowed(rest if kind == "file" else spec, "pair file"))
        return _load_file(path, path.stem)
    raise TaskError(
        f"task source '{spec}' is not understood; use builtin[:p1,p2], blimp:<dir>[:p1,p2], "
        "hub:blimp[:p1,p2], set:<name> or file:<path.csv>"
    )


def _load_file(path: Path, name: str) -> TaskSet:
    from taskspace_core.pairfiles import load_pair_file

    return load_pair_file(path, set_name=name)


def load_many(specs: Sequence[str]) -> TaskSet:
    """Several sources as one task set (task names must stay unique)."""
    sets = [load_tasks(s) for s in specs]
    if len(sets) == 1:
        return sets[0]
    tasks = tuple(t for s in sets for t in s.tasks)
    warnings = tuple(w for s in sets for w in s.warnings)
    return TaskSet("+".join(s.name for s in sets), tasks, warnings)
