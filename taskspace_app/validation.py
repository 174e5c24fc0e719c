"""Checks on what a user types into the Run page (model names, paths, set names); no Streamlit."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskspace_core.pairfiles import ValidationReport
    from taskspace_core.tasks import TaskSet

_HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")


def server_mode() -> bool:
    return os.environ.get("TASKSPACE_SERVER_MODE", "") == "1"


def allowed_dirs() -> list[Path]:
    raw = os.environ.get("TASKSPACE_ALLOWED_MODEL_DIRS", "")
    return [Path(p).expanduser().resolve() for p in raw.split(":") if p.strip()]


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or (os.sep in name.strip("/") and Path(name).expanduser().exists())


def check_local_dir(path: str, what: str = "path") -> str | None:
    """In server mode a local path must lie inside an allowed directory; returns an error or None."""
    if not server_mode():
        return None
    real = Path(path).expanduser().resolve()  # resolve: '..' and symlinks cannot escape
    dirs = allowed_dirs()
    if not any(real == d or d in real.parents for d in dirs):
        where = ", ".join(str(d) for d in dirs) or "none are configured (TASKSPACE_ALLOWED_MODEL_DIRS)"
        return f"this server only accepts a local {what} inside the allowed directories: {where}"
    return None


def check_model_name(name: str) -> str | None:
    """Why a model name/path is refused, or None if it may be used.

    Refused: empty names, anything asking for remote code, local model folders whose config
    needs custom code (``auto_map``), malformed hub names, and in server mode local paths
    outside the allowed directories.
    """
    name = name.strip()
    if not name:
        return "enter a model name"
    if "trust_remote_code" in name.lower() or "remote_code" in name.lower():
        return "models that need remote code are never loaded (trust_remote_code is off)"
    if any(ord(c) < 32 for c in name) or " " in name:
        return "a model name has no spaces or control characters"
    if name == "smollm2-135m":
        return None
    if _looks_like_path(name):
        err = check_local_dir(name, "model folder")
        if err:
            return err
        p = Path(name).expanduser()
        cfg = p / "config.json"
        if cfg.is_file():
            try:
                if "auto_map" in json.loads(cfg.read_text(encoding="utf-8")):
                    return "this model folder needs custom (remote) code to load; it is refused"
            except (OSError, ValueError):
                return f"cannot read {cfg}"
        elif not p.exists():
            return f"no such folder: {name}"
        return None
    if not _HUB_NAME.match(name):
        return "a hub model name looks like 'owner/model' (letters, digits, '.', '_', '-')"
    return None


def check_revision(rev: str) -> str | None:
    if rev and not _REVISION.match(rev):
        return "a revision is a branch, tag or commit (letters, digits, '.', '_', '-', '/')"
    return None


def check_set_name(name: str) -> str | None:
    if not _SET_NAME.match(name or ""):
        return "a task-set name is 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
    return None


_PARSED = "_pairs_upload_parsed"  # session-state key of the last parsed upload


def read_upload(
    data: bytes, filename: str, cache: MutableMapping[str, Any], strip_invisible: bool = False
) -> tuple[TaskSet | None, ValidationReport]:
    """``read_pair_file`` once per file content: Streamlit reruns the page on every click, and a
    large upload took seconds and a lot of memory to parse each time. The last result is kept in
    ``cache`` (the session state) under the SHA-256 of the bytes, the name and the options."""
    from taskspace_core.pairfiles import read_pair_file

    key = (hashlib.sha256(data).hexdigest(), filename, strip_invisible)
    hit = cache.get(_PARSED)
    if hit is not None and hit[0] == key:
        return hit[1]
    result = read_pair_file(data, filename=filename, strip_invisible=strip_invisible)
    cache[_PARSED] = (key, result)
    return result
