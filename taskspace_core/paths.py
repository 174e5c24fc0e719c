"""Where taskspace keeps things on disk."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The results cache: ``$TASKSPACE_CACHE`` or ``./cache``."""
    return Path(os.environ.get("TASKSPACE_CACHE", "cache")).resolve()
