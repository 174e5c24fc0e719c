"""Tuning: a few masked Adam steps on the selected entries only, leaving the model bit-identical.

Adam state (fp32 master values, first and second moments) is kept for the tracked entries
only; the original values of every touched entry are saved and written back at the end
(also on error or interrupt), so no copy of the model is ever made.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from taskspace_core.ftgd.config import FTGDConfig, FTGDError
from taskspace_core.ftgd.gradients import batch_grad, losses, task_gradient_and_margins
from taskspace_core.ftgd.masks import select_mask
from taskspace_core.ftgd.params import check_pairs, grads_on, mask_distribution, selectable_parameters
from taskspace_core.ftgd.result import FTGDResult, encode_mask
from taskspace_core.ftgd.sketch import gradient_sketch
from taskspace_core.models import LoadedModel
from taskspace_core.scoring import task_metrics
from taskspace_core.tasks import MinimalPair

Progress = Callable[[int], None]
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def tune_batches(n: int, batch_size: int, seed: int) -> Iterator[list[int]]:
    """Endless seeded batches of pair indices: a fresh permutation per epoch, batches span epochs."""
    rng = np.random.default_rng(seed)
    buf: list[int] = []
    while True:
        while len(buf) < batch_size:
            buf.extend(int(i) for i in rng.permutation(n))
        yield buf[:batch_size]
        buf = buf[batch_size:]


@dataclass
class _TensorState:
    """Adam state of one tensor's tracked entries (fp32 master values, moments)."""

    param: torch.Tensor
    idx: torch.Tensor  # sorted flat indices (int64)
    base: torch.Tensor  # original values, param dtype: restored bit for bit
    master: torch.Tensor
    m: torch.Tensor
    v: torch.Tensor
    active: torch.Tensor  # bool: in this step's mask

    @classmethod
    def create(cls, param: torch.Tensor, idx: torch.Tensor) -> _TensorState:
        idx = idx.to(param.device)
        base = param.data.view(-1)[idx].clone()
        z = torch.zeros(idx.numel(), dtype=torch.float32, device=param.device)
        # copy=True: for fp32 params .float() would alias ``base`` and the update would overwrite it
        master = base.to(torch.float32, copy=True)
        return cls(param, idx, base, master, z, z.clone(), torch.ones_like(z, dtype=torch.bool))

    def track(self, idx: torch.Tensor) -> None:
        """Add entries to the tracked set (per_step masks); mark exactly ``idx`` active."""
        idx = idx.to(self.idx.device)
        new = idx[~torch.isin(idx, self.idx)]
        if new.numel():
            base = self.param.data.view(-1)[new].clone()
            z = torch.zeros(new.numel(), dtype=torch.float32, device=self.idx.device)
            order = torch.argsort(torch.cat([self.idx, new]))
            self.idx = torch.cat([self.idx, new])[order]
            self.base = torch.cat([self.base, base])[order]
            self.master = torch.cat([self.master, base.float()])[order]  # cat copies
            self.m = torch.cat([self.m, z])[order]
            self.v = torch.cat([self.v, z])[order]
        self.active = torch.isin(self.idx, idx)

    def restore(self) -> None:
        self.param.data.view(-1)[self.idx] = self.base


def _adam_step(states: Sequence[_TensorState], grads: Sequence[torch.Tensor], step: int, cfg: FTGDConfig) -> float:
    """Masked gradients -> global-norm clip -> Adam on the active entries. Returns the pre-clip norm."""
    gs = [g.reshape(-1)[s.idx].float() * s.active for s, g in zip(states, grads, strict=True)]
    norm = math.sqrt(sum(float(torch.dot(g, g)) for g in gs))
    coef = min(1.0, cfg.grad_clip / (norm + 1e-6))  # as torch.nn.utils.clip_grad_norm_
    b1, b2 = ADAM_BETAS
    bc1, bc2 = 1 - b1**step, 1 - b2**step
    for s, g in zip(states, gs, strict=True):
        g = g * coef
        s.m.mul_(b1).add_(g, alpha=1 - b1)
        s.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        update = (s.m / bc1) / ((s.v / bc2).sqrt() + ADAM_EPS) * cfg.lr
        s.master.sub_(torch.where(s.active, update, torch.zeros_like(update)))
        s.param.data.view(-1)[s.idx] = s.master.to(s.param.dtype)
    return norm


def _selection(model: torch.nn.Module, cfg: FTGDConfig) -> list[tuple[str, torch.Tensor]]:
    sel = selectable_parameters(model, cfg.include_embeddings)
    for n, p in sel:
        if not p.is_contiguous():
            raise FTGDError(f"parameter {n} is not contiguous; FTGD writes entries through a flat view")
    return sel


def _mask_phase(
    loaded: LoadedModel, pairs: Sequence[MinimalPair], cfg: FTGDConfig
) -> tuple[dict[str, torch.Tensor], np.ndarray, float, np.ndarray]:
    """(mask, sketch, |g_task|^2, base margins of the mask pairs); ``g_task`` is freed on return."""
    g_task, mask_margins = task_gradient_and_margins(loaded, pairs, cfg)
    grad_sq = float(sum(float(torch.dot(g.reshape(-1).double(), g.reshape(-1).double())) for g in g_task.values()))
    sketch = gradient_sketch(g_task, cfg.sketch_dim)
    mask = select_mask(g_task, cfg.mask_fraction, cfg.mask_scope)
    return mask, sketch, grad_sq, mask_margins


def _tune_steps(
    loaded: LoadedModel,
    pairs: Sequence[MinimalPair],
    cfg: FTGDConfig,
    states: Mapping[str, _TensorState],
    progress: Progress | None,
) -> dict[str, list[float]]:
    """``cfg.steps`` masked Adam steps (grads on the tuned tensors, under no_grad); the tune curve."""
    tuned_names = list(states)
    tensors = [states[n].param for n in tuned_names]
    curve: dict[str, list[float]] = {"step": [], "accuracy": [], "mean_margin": [], "loss": [], "grad_norm": []}
    batches = tune_batches(len(pairs), cfg.batch_size, cfg.seed)
    for step in range(1, cfg.steps + 1):
        batch = [pairs[i] for i in next(batches)]
        with torch.enable_grad():
            grads, margins = batch_grad(loaded, tensors, batch, cfg.loss, 1.0 / len(batch))
        if cfg.mask_update == "per_step":
            step_mask = select_mask(dict(zip(tuned_names, grads, strict=True)), cfg.mask_fraction, cfg.mask_scope)
            for n in tuned_names:
                states[n].track(step_mask[n])
        norm = _adam_step([states[n] for n in tuned_names], grads, step, cfg)
        del grads
        met = task_metrics(margins.double().cpu().numpy())
        curve["step"].append(float(step))
        curve["accuracy"].append(met["accuracy"])
        curve["mean_margin"].append(met["mean_margin"])
        curve["loss"].append(float(losses(margins.double(), cfg.loss).mean()))
        curve["grad_norm"].append(norm)
        if progress:
            progress(1)
    return curve


def _collect_update(
    names: Sequence[str], states: Mapping[str, _TensorState], sizes: Mapping[str, int]
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray | None], dict[str, int]]:
    """(delta, stored masks, mask counts) per selectable tensor, read off the tuned model."""
    delta, masks, counts = {}, {}, {}
    for n in names:
        if n not in states:
            delta[n] = (np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float16))
            masks[n], counts[n] = None, 0
            continue
        s = states[n]
        tuned = s.param.data.view(-1)[s.idx]
        changed = tuned != s.base
        d = (tuned.float() - s.base.float())[changed]
        d_idx = s.idx[changed].cpu().numpy().astype(np.int32)
        delta[n] = (d_idx, d.cpu().numpy().astype(np.float16))
        m_idx = s.idx.cpu().numpy().astype(np.int32)
        masks[n] = encode_mask(m_idx, d_idx, sizes[n])
        counts[n] = int(m_idx.size)
    return delta, masks, counts


def run_ftgd(
    loaded: LoadedModel,
    pairs: Sequence[MinimalPair],
    cfg: FTGDConfig | None = None,
    progress: Progress | None = None,
) -> FTGDResult:
    """FTGD on one task's tune pairs; the model is left bit-identical.

    ``progress(1)`` is called once after the mask and once per step (``steps + 1`` in all).
    """
    cfg = cfg or FTGDConfig()
    check_pairs(pairs, "tune")
    t0 = time.perf_counter()
    sel = _selection(loaded.model, cfg)
    names, params = [n for n, _ in sel], dict(sel)
    sizes = {n: int(p.numel()) for n, p in sel}
    mask, sketch, grad_sq, mask_margins = _mask_phase(loaded, pairs, cfg)
    if progress:
        progress(1)
    # Fixed mask: only tensors holding mask entries need gradients (saves weight-grad matmuls).
    # per_step: nothing is tracked until a step's own mask says so (the g_task mask is not used).
    fixed = cfg.mask_update == "fixed"
    tuned_names = [n for n in names if mask[n].numel()] if fixed else names
    empty = torch.zeros(0, dtype=torch.long)
    states = {n: _TensorState.create(params[n], mask[n] if fixed else empty) for n in tuned_names}
    try:
        with grads_on([params[n] for n in tuned_names]), torch.no_grad():
            curve = _tune_steps(loaded, pairs, cfg, states, progress)
            delta, masks, counts = _collect_update(names, states, sizes)
    finally:
        with torch.no_grad():
            for s in states.values():
                s.restore()
    scale = float(np.abs(sketch).max()) if sketch.size else 0.0
    return FTGDResult(
        config=cfg.key(),
        fingerprint=loaded.fingerprint,
        names=tuple(names),
        tensor_sizes=sizes,
        delta=delta,
        masks=masks,
        counts_per_tensor=counts,
        mask_distribution=mask_distribution(counts),
        curve=curve,
        tune_before=task_metrics(mask_margins),
        sketch=(sketch / scale if scale > 0 else sketch).astype(np.float16),
        sketch_scale=scale,
        grad_sq_norm=grad_sq,
        n_tune_pairs=len(pairs),
        seconds=time.perf_counter() - t0,
    )
