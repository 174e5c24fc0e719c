"""Which models and folders a shared server may use (no torch, no Streamlit).

In server mode every model comes from one admin-written YAML file (env ``TASKSPACE_ALLOWLIST``)::

    models:                       # hub names (owner/name) and local model folders
      - EleutherAI/pythia-70m-deduped
      - {name: EleutherAI/pythia-1.4b-deduped, params: 1.4e9}   # declared size: no config needed
      - /models/my-tuned-gpt2
    model_roots: [/models]        # any model folder below these
    data_roots: [/data/blimp]     # BLiMP folders and pair files only below these

The offline default ``smollm2-135m`` is always allowed. ``TASKSPACE_ALLOWED_MODEL_DIRS``
(colon-separated, the older setting) adds model roots. Outside server mode every check
passes except the ones that are about safety on any machine (remote code, malformed names).

A refusal never depends on whether a path exists outside the allowed places: ``/etc`` and
``/no/such/dir`` get the same reply, so the model box cannot be used to probe the disk.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

OFFLINE_DEFAULT = "smollm2-135m"
ENV_FILE = "TASKSPACE_ALLOWLIST"
ENV_SERVER = "TASKSPACE_SERVER_MODE"
ENV_MODEL_DIRS = "TASKSPACE_ALLOWED_MODEL_DIRS"
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
HUB_NAME = re.compile(rf"^{_PART}/{_PART}$")  # owner/name, exactly one slash


class AllowlistError(ValueError):
    """The allow-list file cannot be read; the message names the file and the field."""


@dataclass(frozen=True)
class Allowlist:
    """What a server may load: hub names, explicit model folders, roots, declared sizes."""

    hub_models: frozenset[str] = frozenset()
    model_dirs: tuple[Path, ...] = ()
    model_roots: tuple[Path, ...] = ()
    data_roots: tuple[Path, ...] = ()
    declared_params: dict[str, float] = field(default_factory=dict)  # model name/path -> parameters


def env_server_mode() -> bool:
    """Server mode as the environment says (the app exports its decision here for its runners)."""
    return os.environ.get(ENV_SERVER, "").strip().lower() in ("1", "true", "yes", "on")


def _dirs(raw: object, where: str) -> tuple[Path, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise AllowlistError(f"{where} must be a list of folder paths")
    return tuple(Path(p).expanduser().resolve() for p in raw if p.strip())


_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9}


def parse_count(value: object) -> float | None:
    """A positive count written as 1400000000, 1.4e9, "1.4e9" (YAML reads that as text) or "1.4B"; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value > 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().lower().replace("_", "")
    scale = _SUFFIX.get(text[-1], 1.0)
    try:
        got = float(text[:-1] if scale != 1.0 else text) * scale
    except ValueError:
        return None
    return got if got > 0 and got != float("inf") else None


def _entry(i: int, item: object, path: str) -> tuple[str, float | None]:
    if isinstance(item, str):
        return item.strip(), None
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        params = item.get("params")
        if params is not None and parse_count(params) is None:
            raise AllowlistError(f"{path}: models[{i}].params must be a number of parameters, e.g. 1.4e9 or 1.4B")
        return item["name"].strip(), parse_count(params)
    raise AllowlistError(f"{path}: models[{i}] must be a name or {{name: ..., params: ...}}")


def read_mapping(path: str, what: str, env: str, error: type[ValueError]) -> dict:
    """An admin's YAML file that must hold a mapping; ``error`` names the file and its env var."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise error(f"cannot read the {what} {path} ({env}): {e}") from e
    if not isinstance(raw, dict):
        raise error(f"{path} ({env}): the {what} must be a mapping")
    return raw


@lru_cache(maxsize=8)
def _parse(path: str, mtime_ns: int, extra_roots: str) -> Allowlist:
    raw = read_mapping(path, "allow-list", ENV_FILE, AllowlistError) if path else {}
    hubs, dirs, declared = set(), [], {}
    for i, item in enumerate(raw.get("models") or []):
        name, params = _entry(i, item, path)
        if HUB_NAME.match(name):
            hubs.add(name)
            key = name
        else:
            d = Path(name).expanduser().resolve()
            dirs.append(d)
            key = str(d)
        if params is not None:
            declared[key] = params
    roots = _dirs(raw.get("model_roots"), f"{path}: model_roots")
    roots += _dirs([p for p in extra_roots.split(":") if p.strip()], ENV_MODEL_DIRS)
    return Allowlist(frozenset(hubs), tuple(dirs), roots, _dirs(raw.get("data_roots"), f"{path}: data_roots"), declared)


def load_allowlist() -> Allowlist:
    """The allow-list named by ``TASKSPACE_ALLOWLIST`` (re-read when the file changes)."""
    path = os.environ.get(ENV_FILE, "").strip()
    try:
        mtime = Path(path).stat().st_mtime_ns if path else 0
    except OSError:
        mtime = -1  # missing: _parse reports it
    return _parse(path, mtime, os.environ.get(ENV_MODEL_DIRS, ""))


def _inside(real: Path, roots: tuple[Path, ...]) -> bool:
    return any(real == r or r in real.parents for r in roots)


def resolve_user_path(path: str) -> Path | None:
    """``path`` with ``~`` expanded and symlinks/'..' resolved, or None when that fails (``~nosuchuser``)."""
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError, ValueError):
        return None


def check_data_path(path: str, what: str = "folder", server: bool | None = None) -> str | None:
    """In server mode a BLiMP folder or pair file must lie under a data root; the same reply for any other path."""
    if not (env_server_mode() if server is None else server):
        return None
    try:
        roots = load_allowlist().data_roots
    except AllowlistError as e:
        return str(e)
    real = resolve_user_path(path)
    if real is not None and _inside(real, roots):
        return None
    where = ", ".join(str(r) for r in roots) or f"none are configured (data_roots in {ENV_FILE})"
    return f"this server only reads a {what} inside the allowed directories: {where}"


def is_local_name(name: str, server: bool) -> bool:
    """Whether ``name`` means a local folder. In server mode decided from the text alone (never from the disk)."""
    if name.startswith(("/", ".", "~")):
        return True
    if server:
        return not HUB_NAME.match(name)
    try:  # a local user's own folder, whatever its name (one word like 'cache' included)
        return Path(name).exists()
    except OSError:
        return False


def _folder_refusal(name: str, al: Allowlist) -> str | None:
    real = resolve_user_path(name)
    if real is not None and (real in al.model_dirs or _inside(real, al.model_roots)):
        return None
    places = [str(d) for d in al.model_dirs] + [f"{r}/..." for r in al.model_roots]
    where = ", ".join(places) or f"none are configured ({ENV_FILE})"
    return f"this server only loads a model folder on its allow-list or inside the allowed directories: {where}"


def _config_refusal(folder: Path) -> str | None:
    cfg = folder / "config.json"
    if cfg.is_file():
        try:
            if "auto_map" in json.loads(cfg.read_text(encoding="utf-8")):
                return "this model folder needs custom (remote) code to load; it is refused"
        except (OSError, ValueError):
            return f"cannot read {cfg}"
        return None
    return None if folder.is_dir() else "no such folder"


def check_model(name: str, server: bool | None = None) -> str | None:
    """Why a model name or folder is refused, or None if it may be used.

    Refused anywhere: empty names, names asking for remote code, control characters, malformed
    hub names (a hub name is ``owner/name``), folders whose config needs custom code. In server
    mode also: hub names not on the allow-list, folders outside it (one reply for all of them).
    """
    name = name.strip()
    server = env_server_mode() if server is None else server
    if not name:
        return "enter a model name"
    if "remote_code" in name.lower():
        return "models that need remote code are never loaded (trust_remote_code is off)"
    if any(ord(c) < 32 for c in name) or " " in name:
        return "a model name has no spaces or control characters"
    if name == OFFLINE_DEFAULT:
        return None
    try:
        al = load_allowlist() if server else Allowlist()
    except AllowlistError as e:
        return str(e)
    if is_local_name(name, server):
        if server and (err := _folder_refusal(name, al)):
            return err
        err = _config_refusal(Path(name).expanduser())
        return f"{err}: {name}" if err == "no such folder" else err
    if not HUB_NAME.match(name):
        return "a hub model name looks like 'owner/model' (letters, digits, '.', '_', '-')"
    if server and name not in al.hub_models:
        return f"'{name}' is not on this server's model allow-list; an admin adds it to the file named by {ENV_FILE}"
    return None
