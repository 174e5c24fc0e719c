"""Where taskspace keeps things on disk: every folder under the cache is spelled here.

Each function takes an optional cache root (default :func:`cache_dir`) so a caller that
was handed another cache (a job, a test) resolves the same layout.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The results cache: ``$TASKSPACE_CACHE`` or ``./cache``."""
    return Path(os.environ.get("TASKSPACE_CACHE", "cache")).resolve()


def _root(cache: str | Path | None) -> Path:
    return Path(cache) if cache is not None else cache_dir()


def store_dir(cache: str | Path | None = None) -> Path:
    """The store's diskcache: ``cache.db`` (keys, metadata, small values) and value files."""
    return _root(cache) / "store"


def jobs_dir(cache: str | Path | None = None) -> Path:
    """Background jobs, one folder per job id (config, progress, log)."""
    return _root(cache) / "jobs"


def tasksets_dir(cache: str | Path | None = None) -> Path:
    """Task sets saved from the app (``<name>.csv``, the ``set:<name>`` source)."""
    return _root(cache) / "tasksets"


def models_dir(cache: str | Path | None = None) -> Path:
    """Models converted or fetched once (the offline default's safetensors copy)."""
    return _root(cache) / "models"


def fingerprints_file(cache: str | Path | None = None) -> Path:
    """Weight fingerprints of local models, so planning need not load them."""
    return models_dir(cache) / "fingerprints.json"


def corpus_dir(cache: str | Path | None = None) -> Path:
    """Pretraining corpora (the Brown corpus tarball)."""
    return _root(cache) / "corpus"


def suite_dir(cache: str | Path | None = None) -> Path:
    """The default output folder of ``precompute pretrain`` (a model suite)."""
    return _root(cache) / "suite"
