"""Records that cross a process boundary, each with one writer and one reader (JSON, no torch).

* :class:`PlanSummary` — what ``precompute run --dry-run --json`` prints and the Run page shows;
* :class:`ProgressRecord` — the progress file a run (and the job wrapper, for its final state)
  writes and the jobs panel polls;
* :class:`SpaceRecord` — the metadata stored beside each assembled space, listed by the app
  without reading the space itself.

Each is a small frozen dataclass with ``to_dict``/``from_dict`` and ``to_json``/``from_json``;
``record["field"]`` and ``record.get("field")`` read it like the dicts it replaces.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

R = TypeVar("R", bound="_Record")
FINAL_STATES = ("done", "failed", "cancelled")


class _Record:
    """JSON round-trips; unknown keys are ignored on reading (a newer writer), missing ones take defaults."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=float)

    @classmethod
    def from_json(cls: type[R], text: str) -> R:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"a {cls.__name__} is a JSON object, not {type(data).__name__}")
        return cls.from_dict(data)

    def __getitem__(self, name: str) -> Any:
        if name not in {f.name for f in fields(self)}:  # type: ignore[arg-type]
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name: object) -> bool:
        return name in {f.name for f in fields(self)}  # type: ignore[arg-type]

    def get(self, name: str, default: Any = None) -> Any:
        value = getattr(self, name, None)
        return default if value is None else value


@dataclass(frozen=True)
class PlanSummary(_Record):
    """Units of a plan: total, cached, to do, per kind (``{kind: {total, cached}}``), and the time to do them."""

    config: str = ""
    models: list[str] = field(default_factory=list)
    tasks: int = 0
    units_total: int = 0
    units_cached: int = 0
    units_todo: int = 0
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    estimated_seconds: float = 0.0
    unfingerprinted: list[str] = field(default_factory=list)  # models planned without loading (not fingerprinted yet)


@dataclass(frozen=True)
class ProgressRecord(_Record):
    """A run's progress: units done of total, per kind ``[done, total]``, ETA, and its state."""

    state: str = "starting"  # starting | running | done | failed | cancelled
    done: int = 0
    total: int = 0
    by_type: dict[str, list[int]] = field(default_factory=dict)
    eta_s: float | None = None
    elapsed_s: float = 0.0
    message: str = ""
    updated: float = 0.0

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def write(self, path: str | Path) -> None:
        """Atomically (write beside, then rename): a reader never sees half a record."""
        p = Path(path)
        tmp = p.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, p)

    @classmethod
    def read(cls, path: str | Path) -> ProgressRecord | None:
        """The record at ``path``, or None when there is none (yet) or it cannot be read."""
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError):
            return None

    def finished(self, state: str, message: str) -> ProgressRecord:
        """This record in a final state (kept as it is when it already is final)."""
        return self if self.final else replace(self, state=state, message=message, updated=time.time())


@dataclass(frozen=True)
class SpaceRecord(_Record):
    """What the store keeps beside an assembled space: enough to list, group and sort it."""

    key: str = ""
    kind: str = "space"
    model: str = ""
    fingerprint: str = ""
    revision: str | None = None
    size_label: str = ""
    step: int | None = None
    series: str = ""
    tasks: str = ""
    n_tasks: int = 0
    methods: list[str] = field(default_factory=list)
    owners: list[str] | None = None  # owner folders of the saved sets it shows (None: written before this field)
    created: float = 0.0
    bytes: int = 0

    def meta(self) -> dict[str, Any]:
        """The fields the writer sets (the store adds key, kind, created and bytes)."""
        return {k: v for k, v in self.to_dict().items() if k not in ("key", "kind", "created", "bytes")}
