"""The one door to the results cache: one checksummed file per entry, no pickle.

Every unit of work is one entry, keyed by a hash of what determines its numbers:
model weight fingerprint + revision + task content hash + method config + method
version. An entry is one file ``<cache>/entries/<kind>/<hh>/<digest>.entry``: a magic
line, a JSON metadata line (kind, model, tasks, time, payload size and SHA-256) and the
payload, a value encoded by :mod:`taskspace_core.codec` (JSON + ``.npz``, never pickle).

Writes go to ``entries/.tmp/`` and are renamed into place, so a killed writer never leaves
a file under an entry's name. :meth:`Store.has` checks the recorded size (a truncated file
is not there); :meth:`Store.get` verifies the checksum. A damaged entry is reported once (a
warning in the log), removed, and therefore missing for ``has()`` too: the next run
recomputes it. Entries of schema 1 (pickles in a diskcache under ``<cache>/results``) are
never read.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from taskspace_core import codec
from taskspace_core.paths import cache_dir, entries_dir

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
_MAGIC = b"taskspace-entry 2\n"
_MAX_HEADER = 1 << 20
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}/[0-9a-f]{8,64}$")
_TMP_MAX_AGE_S = 3600.0  # a temporary file older than this belongs to a writer that died
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


class _Damaged(Exception):
    pass


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
        self.root = entries_dir(self.directory)
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._sweep()

    def close(self) -> None:
        """Nothing to release (entries are plain files); kept for ``with Store() as s``."""

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
        return self._record(self._path(key))

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or ``default`` if absent; a damaged entry is removed and reads as absent."""
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                try:
                    rec, _ = _read_header(f)
                    payload = f.read(int(rec["bytes"]) + 1)
                    if len(payload) != int(rec["bytes"]):
                        raise _Damaged(f"{len(payload)} of {rec['bytes']} bytes")
                    if hashlib.sha256(payload).hexdigest() != rec.get("sha256"):
                        raise _Damaged("checksum mismatch")
                    return codec.decode(payload)
                except (_Damaged, codec.CodecError, KeyError, TypeError, ValueError) as e:
                    self._heal(path, f, e)
                    return default
        except FileNotFoundError:
            return default

    def require(self, key: str) -> Any:
        """The stored value; raises :class:`MissingEntry` if it is absent or was removed as damaged."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise MissingEntry(key)
        return value

    def entries(self, kind: str | None = None) -> Iterator[dict]:
        """Metadata records, optionally of one kind (damaged entries are removed, not listed)."""
        kinds = [self.root / kind] if kind is not None else [d for d in self.root.iterdir() if d != self._tmp]
        for d in kinds:
            for path in sorted(d.glob("*/*.entry")):
                rec = self._record(path)
                if rec is not None:
                    yield rec

    def volume(self) -> int:
        """Bytes of all entry files."""
        return sum(p.stat().st_size for p in self.root.glob("*/*/*.entry"))

    # ---- writing

    def put(self, key: str, value: Any, **meta: Any) -> None:
        """Write value and metadata as one file; ``meta`` should name ``model`` and ``tasks`` where known.

        Raises :class:`~taskspace_core.codec.CodecError` for a value the codec cannot store and
        :class:`StoreError` when the file cannot be written (nothing is left behind then).
        """
        path = self._path(key)
        payload = codec.encode(value)
        record = {"key": key, "kind": key.split("/", 1)[0], "created": time.time(), **meta}
        record.update(bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest(), schema=SCHEMA_VERSION)
        header = _MAGIC + json.dumps(record, default=str, allow_nan=False).encode() + b"\n"
        tmp = self._tmp / f"{key.replace('/', '-')}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part"
        try:
            with open(tmp, "wb") as f:
                _write(f, header)
                _write(f, payload)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            why = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else e.strerror or str(e)
            raise StoreError(
                e.errno, f"could not write cache entry {key} ({len(payload):,} bytes) under {self.root}: {why}"
            ) from e

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    # ---- internals

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"not a store key: {key!r} (keys come from make_key)")
        kind, digest = key.split("/", 1)
        return self.root / kind / digest[:2] / f"{digest}.entry"

    def _record(self, path: Path) -> dict | None:
        try:
            with open(path, "rb") as f:
                try:
                    rec, offset = _read_header(f)
                    size = os.fstat(f.fileno()).st_size
                    if size != offset + int(rec["bytes"]):
                        raise _Damaged(f"{size - offset} of {rec['bytes']} bytes")
                    return rec
                except (_Damaged, KeyError, TypeError, ValueError) as e:
                    self._heal(path, f, e)
                    return None
        except FileNotFoundError:
            return None

    def _heal(self, path: Path, f: IO[bytes], why: BaseException) -> None:
        """Report a damaged entry once and remove it, unless another writer replaced it meanwhile."""
        try:
            same = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            return
        if same:
            path.unlink(missing_ok=True)
            rel = path.relative_to(self.root)
            log.warning("cache entry %s was damaged (%s); removed it, the next run recomputes it", rel, why)

    def _sweep(self) -> None:
        """Remove temporary files of writers that died (killed mid-write)."""
        cutoff = time.time() - _TMP_MAX_AGE_S
        for p in self._tmp.glob("*.part"):
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
            except FileNotFoundError:
                pass


def _read_header(f: IO[bytes]) -> tuple[dict, int]:
    if f.readline(len(_MAGIC)) != _MAGIC:
        raise _Damaged("not a taskspace entry of schema 2")
    line = f.readline(_MAX_HEADER)
    if not line.endswith(b"\n"):
        raise _Damaged("metadata line cut off")
    rec = json.loads(line)
    if not isinstance(rec, dict) or not isinstance(rec.get("bytes"), int) or rec["bytes"] < 0:
        raise _Damaged("metadata without a payload size")
    return rec, f.tell()


def _write(f: IO[bytes], data: bytes) -> None:
    """One write of an entry file (a seam for tests that fill the disk)."""
    f.write(data)
