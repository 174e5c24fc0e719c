"""Freed heap memory goes back to the OS (glibc's malloc_trim), as the runner relies on."""

from __future__ import annotations

import psutil
import pytest

from taskspace_core import memory


def test_release_memory_returns_freed_tensor_pages():
    import torch

    if memory._malloc_trim() is None:
        pytest.skip("no glibc malloc_trim here")
    proc = psutil.Process()
    big = torch.ones(4 * 2**20)  # 16 MB, mmapped; freeing it raises glibc's mmap threshold
    del big
    chunks = [torch.ones(2**20) for _ in range(64)]  # 64 x 4 MB, now on the heap
    pin = torch.ones(2**20)  # above them: the heap's top stays in use, so free() cannot shrink it
    del chunks
    before = proc.memory_info().rss
    assert memory.release_memory() is True
    assert before - proc.memory_info().rss > 128 * 2**20  # most of the 256 MB left the process
    del pin
