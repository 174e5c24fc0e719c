"""Handing freed heap memory back to the OS between the big phases of a run (glibc only).

Why: torch's CPU tensors come from malloc. Once glibc has raised its mmap threshold (it does
so after the first large free), tensors of a few MB -- a model's weights, a full FTGD
gradient -- live on the heap, and freeing them keeps the pages resident. A freed model or
gradient then still counts in RSS while the next one is allocated beside it (measured: the
step-0 twin's weights stayed resident while SmolLM2 loaded). ``malloc_trim(0)`` returns
those free pages; it is cheap (milliseconds) next to a unit.
"""

from __future__ import annotations

import ctypes
import functools
import gc


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        return None


def release_memory(collect: bool = True) -> bool:
    """Free unreachable objects (``collect``), then return free heap pages to the OS.

    Returns whether glibc released any memory (False where there is no ``malloc_trim``).
    """
    if collect:
        gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
