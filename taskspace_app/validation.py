"""Checks on what a user types into the Run page (model names, paths, set names); no Streamlit.

Server mode (:func:`server_mode`) is on whenever the app's server binds to anything but
loopback (Streamlit's ``server.address``; unset means every interface), unless
``TASKSPACE_SERVER_MODE=0`` turns it off explicitly; ``TASKSPACE_SERVER_MODE=1`` turns it on
anywhere. The name and path rules themselves live in :mod:`taskspace_core.allowlist`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskspace_core.pairfiles import ValidationReport
    from taskspace_core.tasks import TaskSet

from taskspace_core import allowlist

_SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def is_loopback(address: str | None) -> bool:
    """Whether a bind address reaches only this machine (None/empty: Streamlit binds every interface)."""
    a = (address or "").strip().lower()
    return a in LOOPBACK or a.startswith("127.")


def bound_address() -> tuple[bool, str | None]:
    """``(is_a_server, server.address)``: False outside a real ``streamlit run`` (AppTest, CLI, runners)."""
    try:
        from streamlit import config
        from streamlit.runtime import Runtime
    except ImportError:
        return False, None
    if not Runtime.exists() or config.get_option("global.appTest"):
        return False, None
    return True, config.get_option("server.address")


def server_mode() -> bool:
    """On when bound beyond loopback, unless TASKSPACE_SERVER_MODE says otherwise (0 or 1)."""
    explicit = os.environ.get(allowlist.ENV_SERVER, "").strip().lower()
    if explicit in ("0", "false", "no", "off"):
        return False
    if explicit:
        return allowlist.env_server_mode()
    served, address = bound_address()
    return served and not is_loopback(address)


def allowed_dirs() -> list[Path]:
    """Model roots a local folder may lie under in server mode."""
    return list(allowlist.load_allowlist().model_roots)


def check_local_dir(path: str, what: str = "path") -> str | None:
    """In server mode a local data path must lie under a data root (same reply whether it exists or not)."""
    return allowlist.check_data_path(path, what, server=server_mode())


def check_model_name(name: str) -> str | None:
    """Why a model name/path is refused, or None if it may be used (see :func:`allowlist.check_model`)."""
    return allowlist.check_model(name, server=server_mode())


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
