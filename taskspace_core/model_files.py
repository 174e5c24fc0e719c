"""Where model weights live on disk and their remembered fingerprints, without importing torch.

A cache-hit run plans with :func:`cached_fingerprint` (the weight hash of a local model
loaded before) and never loads torch; :mod:`taskspace_core.models` loads and records them.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path

from taskspace_core.configs import OFFLINE_DEFAULT, ModelSpec
from taskspace_core.paths import fingerprints_file, models_dir

MODEL_DIR_ENV = "TASKSPACE_MODEL_DIR"  # read-only models baked into an image, looked up before the cache


def _torch_version() -> str:
    """torch's version as installed (equal to ``torch.__version__``) without importing it."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return ""


def _complete(d: Path) -> bool:
    return (d / "config.json").exists() and (d / "model.safetensors").exists()


def baked_model_dir(name: str) -> Path | None:
    """``$TASKSPACE_MODEL_DIR/<name>`` if a model was baked there (the Docker image does), else None.

    Baked models live outside the results cache, so a cache volume mounted over
    ``TASKSPACE_CACHE`` neither hides them nor needs to hold them.
    """
    root = os.environ.get(MODEL_DIR_ENV)
    if not root:
        return None
    d = Path(root) / name
    return d if _complete(d) else None


def _smollm2_location() -> Path:
    return baked_model_dir(OFFLINE_DEFAULT) or models_dir() / OFFLINE_DEFAULT


def smollm2_cached() -> bool:
    return _complete(_smollm2_location())


def _memo_path() -> Path:
    return fingerprints_file()


def _memo_key(spec: ModelSpec) -> str | None:
    """A key that changes whenever the weights on disk could (local sources only)."""
    d = _smollm2_location() if spec.name_or_path == OFFLINE_DEFAULT else Path(spec.name_or_path)
    revision = spec.revision
    if not d.is_dir():
        return None  # a hub name: a moving revision could change the weights
    files = sorted(
        (f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in d.iterdir() if f.suffix in (".safetensors", ".bin")
    )
    return json.dumps([str(d.resolve()), revision, spec.step0, spec.seed, spec.dtype, _torch_version(), files])


def cached_fingerprint(spec: ModelSpec) -> str | None:
    """The weight fingerprint of a local model without loading it, if it was loaded before."""
    key = _memo_key(spec)
    if key is None or not _memo_path().exists():
        return None
    try:
        return json.loads(_memo_path().read_text()).get(key)
    except (OSError, ValueError):
        return None


def remember_fingerprint(spec: ModelSpec, fingerprint: str) -> None:
    key = _memo_key(spec)
    if key is None:
        return
    path = _memo_path()
    try:
        memo = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        memo = {}
    memo[key] = fingerprint
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(memo))
    os.replace(tmp, path)
