"""The one door to the results cache (a diskcache on disk).

Every unit of work is one entry, keyed by a hash of what determines its numbers:
model weight fingerprint + revision + task content hash + method config + method
version. Each entry has a small metadata record beside it (kind, model, tasks, size,
time) so the app can list what is cached without unpickling results. A value and its
metadata are written in one SQLite transaction, so a killed writer never leaves half
an entry.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache

from taskspace_core.paths import cache_dir

SCHEMA_VERSION = 1
_META = "meta:"
_VALUE = "value:"


def canonical(obj: Any) -> str:
    """Deterministic JSON of a key part (sorted keys, no whitespace)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def make_key(kind: str, **parts: Any) -> str:
    """``kind/<hash>`` of the parts; the kind stays readable for listing and debugging."""
    digest = hashlib.sha256(canonical({"schema": SCHEMA_VERSION, "kind": kind, **parts}).encode()).hexdigest()
    return f"{kind}/{digest[:32]}"


class Store:
    """Results on disk. ``Store()`` opens ``$TASKSPACE_CACHE`` or ``./cache``."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(str(self.directory / "results"), size_limit=2**40, eviction_policy="none")

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has(self, key: str) -> bool:
        return (_META + key) in self._cache

    def get(self, key: str, default: Any = None) -> Any:
        return self._cache.get(_VALUE + key, default)

    def meta(self, key: str) -> dict | None:
        return self._cache.get(_META + key)

    def put(self, key: str, value: Any, **meta: Any) -> None:
        """Write value and metadata together; ``meta`` should name ``model`` and ``tasks`` where known."""
        with self._cache.transact():
            self._cache.set(_VALUE + key, value)
            record = {"key": key, "kind": key.split("/", 1)[0], "created": time.time(), **meta}
            # the size of the stored value, as diskcache sees it (file or inline)
            record["bytes"] = _stored_size(self._cache, _VALUE + key)
            self._cache.set(_META + key, record)

    def delete(self, key: str) -> None:
        with self._cache.transact():
            self._cache.delete(_VALUE + key)
            self._cache.delete(_META + key)

    def entries(self, kind: str | None = None) -> Iterator[dict]:
        """Metadata records, optionally of one kind."""
        for k in list(self._cache.iterkeys()):
            if isinstance(k, str) and k.startswith(_META) and (kind is None or k[len(_META) :].startswith(kind + "/")):
                rec = self._cache.get(k)
                if rec is not None:
                    yield rec

    def size_by_model(self) -> dict[str, int]:
        """Bytes of cached results per model label."""
        out: dict[str, int] = {}
        for rec in self.entries():
            label = str(rec.get("model", "(no model)"))
            out[label] = out.get(label, 0) + int(rec.get("bytes", 0))
        return out

    def volume(self) -> int:
        return int(self._cache.volume())


def _stored_size(cache: diskcache.Cache, key: str) -> int:
    row = cache._sql("SELECT size FROM Cache WHERE key = ?", (key,)).fetchone()  # diskcache keeps sizes per row
    return int(row[0]) if row else 0
