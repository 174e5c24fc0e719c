"""The one door to the results cache: a diskcache on disk, checksummed entries, no pickle.

Every unit of work is one entry, keyed by a hash of what determines its numbers:
model weight fingerprint + revision + task content hash + method config + method
version. The cache is a ``diskcache.Cache`` in ``<cache>/store``; an entry is two rows:
``value:<key>``, the value encoded by :mod:`taskspace_core.codec` (JSON + ``.npz``, never
pickle) as ``bytes`` (inline in ``cache.db`` when small, else a ``.val`` file diskcache
names), and ``meta:<key>``, a JSON ``str`` (kind, model, tasks, time, payload size and
SHA-256). :class:`_PlainDisk` lets diskcache store only str/bytes/int/float and refuses
to read any row in its pickle mode, so a hand-made row cannot run code.

Both rows are written in one ``transact()``; diskcache writes a value file before the rows
commit, so a killed writer leaves at most an unreferenced file (swept an hour later), never
an entry. :meth:`Store.has` checks that both rows are there and the value at its recorded
size; :meth:`Store.get` also verifies the checksum. A damaged entry is reported once (a
warning in the log), removed, and therefore missing for ``has()`` too: the next run
recomputes it. Older caches (schema 1 pickles in ``<cache>/results``, schema 2 files in
``<cache>/entries``) are never read.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import diskcache
from diskcache.core import MODE_BINARY, MODE_PICKLE, MODE_RAW, MODE_TEXT

from taskspace_core import codec
from taskspace_core.paths import cache_dir, store_dir

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
_META = "meta:"
_VALUE = "value:"
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}/[0-9a-f]{8,64}$")
_FILENAME = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{28}\.val$")  # what Disk.filename makes
_TMP_MAX_AGE_S = 3600.0  # an unreferenced value file older than this belongs to a writer that died
_ROWS = "SELECT key, mode, size, filename, value FROM Cache WHERE raw = 1 AND key IN (?, ?)"
_MISSING = object()


class StoreError(OSError):
    """An entry could not be written (disk full, no permission); nothing was left behind."""


class MissingEntry(KeyError, ValueError):
    """A unit the caller counted on is not in the store (never written, or removed as damaged)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"cache entry {self.key} is missing (never written, or removed as damaged); run again to recompute it"


class PickleRefused(ValueError):
    """A cache row that only pickle could read (or write); it is never unpickled."""


class _Damaged(Exception):
    pass


def canonical(obj: Any) -> str:
    """Deterministic JSON of a key part (sorted keys, no whitespace)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def make_key(kind: str, **parts: Any) -> str:
    """``kind/<hash>`` of the parts; the kind stays readable for listing and debugging."""
    digest = hashlib.sha256(canonical({"schema": SCHEMA_VERSION, "kind": kind, **parts}).encode()).hexdigest()
    return f"{kind}/{digest[:32]}"


def _plain(obj: Any, what: str) -> None:
    if type(obj) not in (str, bytes, float) and not (type(obj) is int and -(2**63) <= obj < 2**63):
        raise PickleRefused(f"the store keeps only str/bytes/int/float, not a {type(obj).__name__} {what}")


class _PlainDisk(diskcache.Disk):
    """diskcache's serialisation without its pickle fallback, and only its own file names."""

    def __init__(self, directory: str, **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        self._fresh = threading.local()  # files written in this thread's current put

    def put(self, key: Any) -> tuple[Any, bool]:
        _plain(key, "key")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise PickleRefused("a cache key stored as a pickle")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> tuple:
        if read:
            raise PickleRefused("the store takes values, not file handles")
        _plain(value, "value")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode not in (MODE_RAW, MODE_BINARY, MODE_TEXT):
            raise PickleRefused(f"a cache row in mode {mode} (pickle or unknown) is never read")
        if mode != MODE_RAW and not _FILENAME.match(str(filename)):
            raise PickleRefused(f"a cache row names a file diskcache did not make: {filename!r}")
        return super().fetch(mode, filename, value, read)

    def remove(self, file_path: str) -> None:
        if _FILENAME.match(str(file_path)):  # a hand-made row cannot make us delete other files
            super().remove(file_path)

    def _write(self, full_path: str, iterator: Any, mode: str, encoding: str | None = None) -> int:
        """Write one value file in one call of :func:`_write`; a failed write leaves no file."""
        data = "".join(iterator).encode(encoding) if encoding else b"".join(iterator)
        for attempt in range(10):  # another cache may remove the empty folder between makedirs and open
            os.makedirs(os.path.dirname(full_path), exist_ok=True)
            try:
                f = open(full_path, "xb")  # noqa: SIM115 (closed below; the file is removed on failure)
                break
            except FileNotFoundError:
                if attempt == 9:
                    raise
        try:
            with f:
                _write(f, data)
        except BaseException:
            Path(full_path).unlink(missing_ok=True)
            raise
        self.fresh().append(full_path)
        return len(data)

    def fresh(self) -> list[str]:
        if not hasattr(self._fresh, "paths"):
            self._fresh.paths = []
        return self._fresh.paths


class Store:
    """Results on disk. ``Store()`` opens ``$TASKSPACE_CACHE`` or ``./cache``."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else cache_dir()
        self.root = store_dir(self.directory)
        try:
            self._cache = diskcache.Cache(
                str(self.root), disk=_PlainDisk, eviction_policy="none", cull_limit=0, size_limit=2**62
            )
        except sqlite3.DatabaseError as e:
            why = f"the cache database under {self.root} is unreadable ({e}); move it away to start afresh"
            raise StoreError(errno.EIO, why) from e
        self._sweep()

    def close(self) -> None:
        """Close this thread's database connection (reopened on the next use)."""
        self._cache.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading

    def has(self, key: str) -> bool:
        """True if the entry is there at its recorded size (its checksum is checked by :meth:`get`)."""
        return self.meta(key) is not None

    def meta(self, key: str) -> dict | None:
        """The entry's metadata record, or None (a truncated entry is removed and reads as None)."""
        got = self._load(key, payload=False)
        return None if got is _MISSING else got

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or ``default`` if absent; a damaged entry is removed and reads as absent."""
        got = self._load(key, payload=True)
        return default if got is _MISSING else got

    def require(self, key: str) -> Any:
        """The stored value; raises :class:`MissingEntry` if it is absent or was removed as damaged."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise MissingEntry(key)
        return value

    def entries(self, kind: str | None = None) -> Iterator[dict]:
        """Metadata records, optionally of one kind (damaged entries are removed, not listed)."""
        low = _META + (f"{kind}/" if kind is not None else "")
        high = low[:-1] + chr(ord(low[-1]) + 1)
        rows = self._query("SELECT key FROM Cache WHERE raw = 1 AND key >= ? AND key < ? ORDER BY key", (low, high))
        for (name,) in rows:
            key = name[len(_META) :]
            rec = self.meta(key) if _KEY.match(key) else None
            if rec is not None:
                yield rec

    def volume(self) -> int:
        """Bytes of the cache database and all value files."""
        return int(self._cache.volume())

    # ---- writing

    def put(self, key: str, value: Any, **meta: Any) -> None:
        """Write value and metadata in one transaction; ``meta`` should name ``model`` and ``tasks`` where known.

        Raises :class:`~taskspace_core.codec.CodecError` for a value the codec cannot store and
        :class:`StoreError` when the entry cannot be written (nothing is left behind then).
        """
        _check(key)
        payload = codec.encode(value)
        record = {"key": key, "kind": key.split("/", 1)[0], "created": time.time(), **meta}
        record.update(bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest(), schema=SCHEMA_VERSION)
        text = json.dumps(record, default=str, allow_nan=False)
        fresh = self._cache.disk.fresh()
        fresh.clear()
        try:
            with self._cache.transact(retry=True):
                self._cache.set(_VALUE + key, payload)
                self._cache.set(_META + key, text)
        except (OSError, sqlite3.Error) as e:
            for path in fresh:  # the rows rolled back; their files must go too
                Path(path).unlink(missing_ok=True)
            raise _write_error(e, key, len(payload), self.root) from e
        finally:
            fresh.clear()

    def delete(self, key: str) -> None:
        _check(key)
        with self._cache.transact(retry=True):
            self._cache.delete(_VALUE + key)
            self._cache.delete(_META + key)

    # ---- internals

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        # diskcache has no query API; its Cache table (key, raw, mode, filename, value, ...) is stable since 3.0
        return self._cache._sql(sql, args).fetchall()

    def _load(self, key: str, payload: bool, again: bool = True) -> Any:
        """The metadata record (or decoded value) of ``key``, or ``_MISSING``; damage is healed here."""
        _check(key)
        rows = self._rows(key)
        if not rows:
            return _MISSING
        try:
            rec = self._record(rows.get(_META + key), rows.get(_VALUE + key))
            if not payload:
                return rec
            data = self._fetch(rows[_VALUE + key])
            if len(data) != rec["bytes"]:
                raise _Damaged(f"{len(data)} of {rec['bytes']} bytes")
            if hashlib.sha256(data).hexdigest() != rec["sha256"]:
                raise _Damaged("checksum mismatch")
            return codec.decode(data)
        except (_Damaged, PickleRefused, codec.CodecError) as e:
            if self._heal(key, rows, e) or not again:
                return _MISSING
            return self._load(key, payload, again=False)  # replaced while we read (its old file is gone)

    def _rows(self, key: str) -> dict[str, tuple]:
        """Both rows of an entry, read in one statement (one snapshot): name -> (mode, size, filename, value)."""
        return {r[0]: r[1:] for r in self._query(_ROWS, (_META + key, _VALUE + key))}

    def _fetch(self, row: tuple) -> Any:
        mode, _size, filename, value = row
        try:
            return self._cache.disk.fetch(mode, filename, value, False)
        except (OSError, UnicodeDecodeError) as e:
            raise _Damaged(f"{type(e).__name__}: {e}") from e

    def _record(self, meta_row: tuple | None, value_row: tuple | None) -> dict:
        if meta_row is None or value_row is None:
            raise _Damaged("metadata without a value" if value_row is None else "a value without metadata")
        text = self._fetch(meta_row)
        try:
            rec = json.loads(text) if isinstance(text, str) else None
        except ValueError as e:
            raise _Damaged(f"metadata is not JSON: {e}") from e
        if not isinstance(rec, dict) or not isinstance(rec.get("sha256"), str):
            raise _Damaged("metadata without a checksum")
        if type(rec.get("bytes")) is not int or rec["bytes"] < 0:
            raise _Damaged("metadata without a payload size")
        mode, _size, filename, value = value_row
        if mode == MODE_RAW and isinstance(value, bytes):
            size = len(value)
        elif mode == MODE_BINARY and _FILENAME.match(str(filename)):
            try:
                size = os.stat(self.root / filename).st_size
            except OSError as e:
                raise _Damaged(f"value file {filename}: {e.strerror}") from e
        elif mode == MODE_PICKLE:
            raise PickleRefused("a value stored as a pickle is never read")
        else:
            raise _Damaged(f"a value stored in mode {mode} ({type(value).__name__}), not as bytes")
        if size != rec["bytes"]:
            raise _Damaged(f"{size} of {rec['bytes']} bytes")
        return rec

    def _heal(self, key: str, seen: dict, why: BaseException) -> bool:
        """Report a damaged entry once and remove it; False if another writer replaced it meanwhile."""
        with self._cache.transact(retry=True):
            if self._rows(key) != seen:
                return False
            self._cache.delete(_VALUE + key)
            self._cache.delete(_META + key)
        log.warning("cache entry %s was damaged (%s); removed it, the next run recomputes it", key, why)
        return True

    def _sweep(self) -> None:
        """Remove value files of writers that died (killed before their rows committed)."""
        cutoff = time.time() - _TMP_MAX_AGE_S
        old = []
        for p in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*.val"):
            try:
                if p.stat().st_mtime < cutoff:
                    old.append(p)
            except FileNotFoundError:
                pass
        if old:
            known = {f for (f,) in self._query("SELECT filename FROM Cache WHERE filename IS NOT NULL")}
            for p in old:
                if p.relative_to(self.root).as_posix() not in known:
                    p.unlink(missing_ok=True)


def _check(key: str) -> None:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"not a store key: {key!r} (keys come from make_key)")


def _write_error(e: OSError | sqlite3.Error, key: str, size: int, root: Path) -> StoreError:
    full = getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "full" in str(e)  # SQLite: "disk is full"
    code = errno.ENOSPC if full else getattr(e, "errno", None) or errno.EIO
    why = "the disk is full" if full else getattr(e, "strerror", None) or str(e)
    return StoreError(code, f"could not write cache entry {key} ({size:,} bytes) under {root}: {why}")


def _write(f: IO[bytes], data: bytes) -> None:
    """One write of a value file (a seam for tests that fill the disk or kill the writer)."""
    f.write(data)
