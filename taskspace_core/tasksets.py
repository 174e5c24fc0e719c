"""Task sets saved from the app: ``<cache>/tasksets/<name>.csv``, versioned, never overwritten.

The first save of a name writes ``<name>.csv`` (version 1); replacing it writes
``<name>@v2.csv``, ``<name>@v3.csv``... and keeps every older version, so a job that
pinned a version (``set:<name>@v2``) always reads the content it was started with.
``set:<name>`` means the latest version. Files appear atomically and are never replaced:
each is written to a temporary file and then hard-linked under its final name, which
fails if that name already exists (two saves at once cannot overwrite each other).

On a shared server each user's sets live in a folder of their own: the app saves
``<owner>/<name>`` (:func:`owned_name`), lists only the user's folder, and a job may read
only its owner's sets (:func:`may_read`), so no user can replace, read or run another's.
A name is one or two safe parts (``name`` or ``owner/name``); anything else, such as a
path that climbs out of the folder, is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskspace_core.paths import tasksets_dir
from taskspace_core.tasks import TaskError, TaskSet

_VERSIONED = re.compile(r"^(?P<base>.+)@v(?P<n>[0-9]+)$")
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")  # set names and user names (accounts.USER_NAME)


def owner_folder(user: str) -> str:
    """The folder of ``user``'s sets: the name itself when it is a safe part, else a hash of it."""
    return user if _PART.match(user or "") else "u-" + hashlib.sha256((user or "").encode()).hexdigest()[:16]


def owned_name(owner: str | None, name: str) -> str:
    """The stored name of ``name`` saved by ``owner`` (None: a set of the shared top folder)."""
    return name if owner is None else f"{owner_folder(owner)}/{name}"


def may_read(name: str, user: str, is_admin: bool = False) -> bool:
    """Whether ``user`` may run set ``name`` (with or without ``@vN``): their own, or any for an admin."""
    folder, _ = _split(_VERSIONED.sub(r"\g<base>", name))
    return is_admin or folder == owner_folder(user)


def owners_of(specs: Iterable[str]) -> list[str]:
    """Owner folders of the saved sets among task-source specs (``set:<owner>/<name>[@vN]``): whose
    pairs a result built from these sources shows. Sets of the shared top folder have no owner."""
    found: list[str] = []
    for spec in specs:
        kind, _, rest = str(spec).strip().partition(":")
        if kind != "set" or not rest:
            continue
        try:
            folder, _ = _split(_VERSIONED.sub(r"\g<base>", rest.strip()))
        except TaskError:  # not a stored name: no set was read, so nobody's pairs are in it
            continue
        if folder and folder not in found:
            found.append(folder)
    return found


def owners_of_name(taskset_name: str) -> list[str]:
    """Owner folders read from a result's task-set name (``builtin+alice/verbs@v2``), for records
    written before results listed their owners. Fails closed: a ``+`` inside an owner's name makes
    the folder read here another one, which hides the result rather than showing it to others."""
    return [part.rsplit("+", 1)[-1] for part in taskset_name.split("/")[:-1]]


def result_owners(record: Mapping[str, Any]) -> list[str]:
    """Owner folders of a stored result from its record: its ``owners``, else those of its task
    ``sources``, else read from its task-set name (records from before either was written)."""
    owners = record.get("owners")
    if owners is not None:
        return list(owners)
    if record.get("sources"):
        return owners_of(record["sources"])
    return owners_of_name(str(record.get("tasks") or ""))


def may_see(owners: Sequence[str], user: str, is_admin: bool = False) -> bool:
    """Whether ``user`` may see a result built from the sets of ``owners``: a shared result (no
    owner), one of only their own sets, or any for an admin (a result that also holds another
    user's set shows that user's pairs, so it is theirs to see, not this user's)."""
    return is_admin or set(owners) <= {owner_folder(user)}


def _split(base: str) -> tuple[str | None, str]:
    """(owner folder or None, set name) of a stored name, or TaskError for anything that is not one."""
    parts = base.split("/")
    if len(parts) > 2 or not all(_PART.match(p) for p in parts):
        raise TaskError(
            f"'{base}' is not a task-set name: one or two parts ('name' or 'owner/name') of letters, digits, "
            "'_', '-', '.', '@' or '+', each starting with a letter or digit"
        )
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _folder(base: str, cache: str | Path | None) -> tuple[Path, str]:
    folder, stem = _split(base)
    d = tasksets_dir(cache)
    return (d / folder if folder else d), stem


class TaskSetConflict(TaskError):
    """A saved set of this name exists with different content."""

    def __init__(self, name: str, version: int) -> None:
        super().__init__(
            f"a task set named '{name}' already exists (version {version}) with different pairs: "
            "choose a new name or replace it (replacing keeps the old version)"
        )
        self.name = name
        self.version = version


@dataclass(frozen=True)
class SavedSet:
    """One version of a saved set; ``name`` is what ``set:`` takes and results show."""

    base: str
    version: int
    path: Path
    created: bool = False  # False when an identical latest version was already there

    @property
    def name(self) -> str:
        return self.base if self.version == 1 else f"{self.base}@v{self.version}"

    @property
    def pinned(self) -> str:
        """The name of exactly this version, also for version 1 (``set:<pinned>`` never changes)."""
        return f"{self.base}@v{self.version}"


def _path(base: str, version: int, cache: str | Path | None) -> Path:
    d, stem = _folder(base, cache)
    return d / (f"{stem}.csv" if version == 1 else f"{stem}@v{version}.csv")


def versions(base: str, cache: str | Path | None = None) -> list[SavedSet]:
    """Every saved version of ``base``, oldest first."""
    d, stem = _folder(base, cache)
    found = []
    if (d / f"{stem}.csv").is_file():
        found.append(SavedSet(base, 1, d / f"{stem}.csv"))
    for p in d.glob(f"{glob_escape(stem)}@v*.csv") if d.is_dir() else ():
        m = _VERSIONED.match(p.stem)
        if m and m["base"] == stem:
            found.append(SavedSet(base, int(m["n"]), p))
    return sorted(found, key=lambda s: s.version)


def glob_escape(text: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def resolve(name: str, cache: str | Path | None = None) -> SavedSet | None:
    """The version ``name`` means: ``base@vN`` that version, a bare base the latest."""
    m = _VERSIONED.match(name)
    if m:
        wanted = SavedSet(m["base"], int(m["n"]), _path(m["base"], int(m["n"]), cache))
        return wanted if wanted.path.is_file() else None
    have = versions(name, cache)
    return have[-1] if have else None


def list_sets(cache: str | Path | None = None, owner: str | None = None) -> list[str]:
    """Base names of the saved sets (each stands for its latest version): those of the shared top
    folder, or with ``owner`` only that user's (as ``owner/name``)."""
    d = tasksets_dir(cache) / owner_folder(owner) if owner is not None else tasksets_dir(cache)
    if not d.is_dir():
        return []
    stems = {(m["base"] if (m := _VERSIONED.match(p.stem)) else p.stem) for p in d.glob("*.csv")}
    return sorted(owned_name(owner, st) for st in stems)


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:20]


def save(ts: TaskSet, name: str, cache: str | Path | None = None, replace: bool = False) -> SavedSet:
    """Save ``ts`` as ``name``: a new set, the same content again (a no-op), or with
    ``replace`` a new version. Different content under an existing name without ``replace``
    raises :class:`TaskSetConflict`."""
    from taskspace_core.pairfiles import write_pair_file

    d, _ = _folder(name, cache)
    d.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=d, prefix=".saving-", suffix=".csv")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write_pair_file(TaskSet(name, ts.tasks), tmp)
        while True:
            have = versions(name, cache)
            if have and file_hash(have[-1].path) == file_hash(tmp):
                return have[-1]
            if have and not replace:
                raise TaskSetConflict(name, have[-1].version)
            version = have[-1].version + 1 if have else 1
            with contextlib.suppress(FileExistsError):  # another save took this version: look again
                _publish(tmp, _path(name, version, cache))
                return SavedSet(name, version, _path(name, version, cache), created=True)
    finally:
        tmp.unlink(missing_ok=True)


def _publish(tmp: Path, target: Path) -> None:
    """Give ``tmp``'s finished content the name ``target``, never replacing an existing file."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system: reserve the name, then swap the content in
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        os.replace(tmp, target)
