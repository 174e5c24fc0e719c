"""Applying a cached sparse update to the one loaded model, and restoring it bit for bit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import numpy as np
import torch

from taskspace_core.ftgd.config import FTGDError
from taskspace_core.ftgd.result import FTGDResult
from taskspace_core.models import LoadedModel

DeltaLike = FTGDResult | Mapping[str, tuple[np.ndarray, np.ndarray]]


def _applied_stack(loaded: LoadedModel) -> list[int]:
    return loaded.__dict__.setdefault("_ftgd_applied", [])


def is_applied(loaded: LoadedModel, delta: DeltaLike) -> bool:
    """Whether ``delta`` is currently applied to ``loaded`` by :func:`applied` (innermost or not)."""
    return id(delta) in _applied_stack(loaded)


def any_applied(loaded: LoadedModel) -> bool:
    """Whether any update is applied to ``loaded`` right now."""
    return bool(_applied_stack(loaded))


def _delta_items(loaded: LoadedModel, delta: DeltaLike) -> Mapping[str, tuple[np.ndarray, np.ndarray]]:
    if not isinstance(delta, FTGDResult):
        return delta
    if delta.fingerprint and delta.fingerprint != loaded.fingerprint:
        raise FTGDError(
            f"this FTGD update was tuned on another model (fingerprint {delta.fingerprint[:10]}, "
            f"loaded {loaded.fingerprint[:10]}); recompute it for {loaded.spec.label}"
        )
    return delta.delta


def _write_delta(
    params: Mapping[str, torch.Tensor],
    items: Mapping[str, tuple[np.ndarray, np.ndarray]],
    saved: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> None:
    """Add every tensor's fp16 delta in place, saving the originals into ``saved`` as it goes."""
    for name, (idx, vals) in items.items():
        if len(idx) == 0:
            continue
        if name not in params:
            raise FTGDError(f"the update names a parameter '{name}' this model does not have")
        p = params[name]
        flat = p.data.view(-1)
        it = torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(p.device)
        if int(it.max()) >= flat.numel():
            raise FTGDError(f"the update does not fit parameter '{name}' ({flat.numel()} entries)")
        orig = flat[it].clone()
        saved.append((flat, it, orig))
        flat[it] = (orig.float() + torch.from_numpy(np.asarray(vals)).float().to(p.device)).to(p.dtype)


@contextlib.contextmanager
def applied(loaded: LoadedModel, delta: DeltaLike) -> Iterator[LoadedModel]:
    """Apply ``base + fp16 delta`` in place; on exit write the saved originals back (bit-identical)."""
    items = _delta_items(loaded, delta)
    params = dict(loaded.model.named_parameters())
    saved: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    stack = _applied_stack(loaded)
    pushed = False
    try:
        with torch.no_grad():
            _write_delta(params, items, saved)
        stack.append(id(delta))
        pushed = True
        yield loaded
    finally:
        if pushed:
            stack.pop()
        with torch.no_grad():
            for flat, it, orig in reversed(saved):
                flat[it] = orig
