"""Where taskspace keeps things on disk."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The results cache: ``$TASKSPACE_CACHE`` or ``./cache``."""
    return Path(os.environ.get("TASKSPACE_CACHE", "cache")).resolve()


def jobs_dir(cache: str | Path | None = None) -> Path:
    """Background jobs and their queue: ``<cache>/jobs``."""
    return Path(cache if cache is not None else cache_dir()) / "jobs"


def tasksets_dir(cache: str | Path | None = None) -> Path:
    """Task sets saved from the app: ``<cache>/tasksets``."""
    return Path(cache if cache is not None else cache_dir()) / "tasksets"
