"""Gradient differentials: ``g_task`` and the per-batch gradients that tuning steps on."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from taskspace_core.ftgd.config import FTGDConfig
from taskspace_core.ftgd.params import check_pairs, grads_on, selectable_parameters
from taskspace_core.models import LoadedModel
from taskspace_core.scoring import margins_with_grad
from taskspace_core.tasks import MinimalPair

GRAD_CHUNK = 8  # pairs per forward/backward when building g_task: memory (the mean is the same)


def losses(margins: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-pair loss: ``-margin`` (diff) or ``-log sigmoid(margin)`` (logistic)."""
    # -log sigmoid(m) = softplus(-m): stable for large |m|
    return -margins if loss == "diff" else torch.nn.functional.softplus(-margins)


def batch_grad(
    loaded: LoadedModel, params: Sequence[torch.Tensor], pairs: Sequence[MinimalPair], loss: str, scale: float
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Gradients of ``scale * sum(loss(margin))`` w.r.t. ``params`` (grads on), and the margins."""
    margins = margins_with_grad(loaded, pairs)
    total = losses(margins, loss).sum() * scale
    grads = torch.autograd.grad(total, list(params), allow_unused=True)
    out = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    return out, margins.detach()


def task_gradient(
    loaded: LoadedModel, pairs: Sequence[MinimalPair], cfg: FTGDConfig | None = None
) -> dict[str, torch.Tensor]:
    """``g_task`` = mean gradient differential over the first ``cfg.mask_pairs`` pairs, per selectable tensor."""
    grads, _ = task_gradient_and_margins(loaded, pairs, cfg or FTGDConfig())
    return grads


def task_gradient_and_margins(
    loaded: LoadedModel, pairs: Sequence[MinimalPair], cfg: FTGDConfig, loss: str = "diff"
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """``g_task`` per selectable tensor and the base-model margins of the pairs it averages over."""
    check_pairs(pairs, "tune")
    sel = selectable_parameters(loaded.model, cfg.include_embeddings)
    names, params = [n for n, _ in sel], [p for _, p in sel]
    with grads_on(params):
        acc, margins = mean_gradient(loaded, params, list(pairs[: cfg.mask_pairs]), lambda m: losses(m, loss))
    return dict(zip(names, acc, strict=True)), margins


def mean_gradient(
    loaded: LoadedModel,
    params: Sequence[torch.Tensor],
    pairs: Sequence[MinimalPair],
    per_pair: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[list[torch.Tensor], np.ndarray]:
    """Gradient of ``mean(per_pair(margins))`` over ``pairs`` w.r.t. ``params`` (grads on and
    ``.grad`` empty), and the margins, in chunks of :data:`GRAD_CHUNK` pairs."""
    margins = []
    # backward() sums each chunk's gradient into .grad in place: one gradient buffer for the
    # whole model, and only one chunk's activations alive (the peak of a run is here)
    for s in range(0, len(pairs), GRAD_CHUNK):
        m = margins_with_grad(loaded, pairs[s : s + GRAD_CHUNK])
        (per_pair(m).sum() / len(pairs)).backward()
        margins.append(m.detach())
    acc = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
    return acc, torch.cat(margins).double().cpu().numpy()
