"""Minimal pairs, tasks and task sets, with deterministic tune/eval splits (METHODS.md s1).

Loaders for the original BLiMP files and the hub live here too; user files
(CSV/TSV/JSONL) are read and validated by :mod:`taskspace_core.pairfiles`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TUNE = 200
DEFAULT_EVAL = 200


class TaskError(ValueError):
    """Bad task input, with a message a linguist can act on."""


@dataclass(frozen=True)
class MinimalPair:
    """A grammatical sentence and its ungrammatical twin."""

    good: str
    bad: str

    def split_key(self, task_name: str) -> str:
        """Seeded by task name + pair text, so file order never changes a split."""
        return hashlib.sha256(f"{task_name}\x1f{self.good}\x1f{self.bad}".encode()).hexdigest()


@dataclass(frozen=True)
class Task:
    """A named set of minimal pairs (a paradigm) with its metadata.

    ``tags`` holds free tag columns (name -> value); every tag, like ``category``
    and ``field``, is a possible hypothesis level.
    """

    name: str
    pairs: tuple[MinimalPair, ...]
    category: str = ""
    field: str = ""
    description: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise TaskError("a task needs a non-empty name")
        if not self.pairs:
            raise TaskError(f"task '{self.name}' has no pairs")

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)

    def level(self, name: str) -> str:
        """Label of this task at a hypothesis level (``category``, ``field`` or a tag)."""
        if name == "category":
            return self.category
        if name == "field":
            return self.field
        return self.tag_dict.get(name, "")

    @property
    def example(self) -> MinimalPair:
        return self.pairs[0]

    def content_hash(self) -> str:
        """Hash of everything that changes a number computed on this task."""
        h = hashlib.sha256()
        h.update(json.dumps([self.name, self.category, self.field], ensure_ascii=False).encode())
        for p in self.pairs:
            h.update(b"\x1e" + p.good.encode() + b"\x1f" + p.bad.encode())
        return h.hexdigest()[:20]

    def split(
        self, n_tune: int = DEFAULT_TUNE, n_eval: int = DEFAULT_EVAL
    ) -> tuple[tuple[MinimalPair, ...], tuple[MinimalPair, ...]]:
        """Deterministic disjoint (tune, eval) splits.

        Pairs are ordered by a hash of task name + pair text. With fewer than
        ``n_tune + n_eval`` pairs the task is cut half and half (METHODS.md s1).
        """
        ordered = sorted(self.pairs, key=lambda p: p.split_key(self.name))
        if len(ordered) < n_tune + n_eval:
            half = len(ordered) // 2
            n_tune, n_eval = half, len(ordered) - half
        return tuple(ordered[:n_tune]), tuple(ordered[n_tune : n_tune + n_eval])

    def limited(self, n: int | None) -> Task:
        """The first ``n`` pairs in file order (for quick runs); ``None`` keeps all."""
        if n is None or n >= len(self.pairs):
            return self
        return Task(self.name, self.pairs[:n], self.category, self.field, self.description, self.tags, self.source)


@dataclass(frozen=True)
class TaskSet:
    """An ordered collection of uniquely named tasks."""

    name: str
    tasks: tuple[Task, ...]
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for t in self.tasks:
            if t.name in seen:
                raise TaskError(f"task set '{self.name}': two tasks are named '{t.name}'")
            seen.add(t.name)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"no task named '{name}' in task set '{self.name}'")

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def levels(self) -> list[str]:
        """Hypothesis levels every task carries a label for (category, field, tags)."""
        out = [lv for lv in ("category", "field") if all(t.level(lv) for t in self.tasks)]
        tag_names = sorted({k for t in self.tasks for k, _ in t.tags})
        return out + [k for k in tag_names if all(t.level(k) for t in self.tasks)]

    def select(self, names: Iterable[str]) -> TaskSet:
        wanted = list(names)
        missing = [n for n in wanted if n not in self.names]
        if missing:
            raise TaskError(
                f"task set '{self.name}' has no task(s) {', '.join(missing)}; available: {', '.join(self.names)}"
            )
        return TaskSet(self.name, tuple(self[n] for n in wanted), self.warnings)

    def limited(self, n: int | None) -> TaskSet:
        return TaskSet(self.name, tuple(t.limited(n) for t in self.tasks), self.warnings)

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for t in self.tasks:
            h.update(t.content_hash().encode())
        return h.hexdigest()[:20]


# ---------------------------------------------------------------- BLiMP loaders


def _blimp_task(rows: list[Mapping[str, object]], uid: str, source: str) -> Task:
    first = rows[0]
    pairs: dict[tuple[str, str], None] = {}
    for r in rows:
        pairs[(str(r["sentence_good"]).strip(), str(r["sentence_bad"]).strip())] = None
    return Task(
        name=uid,
        pairs=tuple(MinimalPair(g, b) for g, b in pairs),
        category=str(first.get("linguistics_term", "")),
        field=str(first.get("field", "")),
        description=f"BLiMP paradigm {uid}",
        tags=(("UID", uid),),
        source=source,
    )


def load_blimp_dir(directory: str | Path, names: Iterable[str] | None = None) -> TaskSet:
    """Load BLiMP from a directory of its original ``*.jsonl`` files (one per paradigm)."""
    d = Path(directory)
    if not d.is_dir():
        raise TaskError(f"BLiMP directory '{d}' does not exist; pass the folder holding the 67 *.jsonl files")
    files = sorted(d.glob("*.jsonl"))
    if names is not None:
        wanted = list(names)
        by_stem = {f.stem: f for f in files}
        missing = [n for n in wanted if n not in by_stem]
        if missing:
            raise TaskError(f"no BLiMP paradigm file for {', '.join(missing)} in '{d}'")
        files = [by_stem[n] for n in wanted]
    if not files:
        raise TaskError(f"'{d}' holds no *.jsonl files; pass the folder holding BLiMP's paradigm files")
    tasks = []
    for f in files:
        rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not rows:
            raise TaskError(f"{f}: the file is empty")
        tasks.append(_blimp_task(rows, str(rows[0].get("UID", f.stem)), source=f"blimp:{d}"))
    return TaskSet("blimp", tuple(tasks))


def load_blimp_hub(names: Iterable[str] | None = None, dataset: str = "nyu-mll/blimp") -> TaskSet:
    """Load BLiMP paradigms from the Hugging Face hub (needs network access)."""
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is a requirement
        raise TaskError("loading BLiMP from the hub needs the 'datasets' package: pip install datasets") from e
    try:
        configs = list(names) if names is not None else datasets.get_dataset_config_names(dataset)
        tasks = []
        for uid in configs:
            ds = datasets.load_dataset(dataset, uid, split="train")
            tasks.append(_blimp_task(list(ds), uid, source=f"hub:{dataset}"))
    except Exception as e:  # network errors come in many types
        raise TaskError(
            f"could not load BLiMP from the hub ({type(e).__name__}); offline, pass a local directory "
            f"instead: --tasks blimp:/path/to/blimp"
        ) from e
    return TaskSet("blimp-hub", tuple(tasks))
