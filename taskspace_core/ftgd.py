"""FTGD: fine-tuning via gradient differentials (METHODS.md s3).

For a minimal pair, ``L_diff = -margin = nll(good) - nll(bad)``; its gradient is the pair's
*gradient differential*. FTGD averages it over ``mask_pairs`` tune pairs (``g_task``), keeps
the top ``mask_fraction`` of ``|g_task|`` entries as a mask, and tunes only those entries
with a few Adam steps. The result (:class:`FTGDResult`) is a sparse update, compact enough
to cache, plus the mask, the tune curve, the mask's layout over layers and modules, and a
count-sketch of ``g_task`` from which gradient cosines (G, METHODS s5) are estimated.

Design decisions (documented here because the spec leaves them open):

* **Selectable parameters** (``include_embeddings=False``): every floating-point parameter
  except those of ``nn.Embedding`` modules (token and learned position embeddings,
  GPT-NeoX ``embed_in``) and of the output embeddings (LM head, tied or not). The *final
  norm* (``model.norm`` / ``ln_f`` / ``final_layer_norm``) **is** selectable: it belongs to
  the transformer stack, carries no per-word rows, and is tiny (576 of SmolLM2's 134.5M).
  With ``include_embeddings=True`` every parameter is selectable (a tied matrix once).
* **No model copy.** Tuning writes only the masked entries in place. Adam state (fp32 master
  values, first and second moments) is kept for those entries only, and the original values
  of every touched entry are saved and written back at the end, so the model is bit-identical
  afterwards (also on error or interrupt).
* **The update is stored as fp16 deltas** and is always applied as ``base + fp16(delta)``
  (:func:`applied`), so evaluating right after tuning and evaluating a cached result after a
  restart give identical numbers. Tuning itself never evaluates the tuned model.
* **Tune curve**: accuracy, mean margin and loss of each step's *batch*, measured in that
  step's forward pass (before its update: free, no extra passes). ``tune_before`` holds the
  metrics of the ``mask_pairs`` subset at the base model (free, from the mask gradient).
* **mask_update="per_step"** re-ranks the mask every step by ``|gradient of that step's
  batch loss|`` (same scope and fraction); only the current step's mask entries move (their
  Adam moments persist while out of the mask, but they do not step). The stored mask is the
  union of the per-step masks, i.e. every entry that was allowed to change.
* **Gradient sketch**: a count-sketch of ``g_task`` of dimension ``sketch_dim``. Entry ``i`` of
  tensor ``t`` goes to bucket ``(a_t + i) mod D`` with sign ``s[(b_t + i) mod (D+1)]``, where
  ``a_t, b_t`` come from a hash of the tensor name and ``s`` is a fixed splitmix64 sign
  pattern: the same hash for every task of a model, portable across numpy/torch versions,
  and computed with contiguous slices (no scatter; fast on CPU). Two entries that share a
  bucket always get independent signs, so ``<S a, S b>`` is unbiased for ``<a, b>`` with
  variance about ``(|a|^2 |b|^2 + <a,b>^2) / D``: the cosine's standard error is about
  ``sqrt((1 + cos^2) / D)``, i.e. <= 7e-4 at the default ``D = 2**22`` (<= 0.0055 at 2**16).
  The sketch is stored as fp16 divided by its max-abs value (cosines are scale-free).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from taskspace_core.configs import SKETCH_SEED, FTGDConfig, FTGDError
from taskspace_core.models import LoadedModel
from taskspace_core.packing import Row, encode, pack, token_logprobs
from taskspace_core.scoring import PairScorer, ScoringConfig, margins_with_grad, task_metrics
from taskspace_core.tasks import MinimalPair

Progress = Callable[[int], None]
GRAD_CHUNK = 32  # pairs per forward/backward when building g_task (only speed; the mean is the same)
_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8

MODULE_TYPES = (
    "embed", "attn_q", "attn_k", "attn_v", "attn_qkv", "attn_o",
    "mlp_gate", "mlp_up", "mlp_down", "norm", "other",
)  # fmt: skip
# First match wins; patterns look at the parameter's full dotted name.
_MODULE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pat))
    for kind, pat in (
        ("embed", r"(embed|\bwte\b|\bwpe\b|lm_head)"),
        ("norm", r"(norm|\bln_?\w*\b|layernorm)"),
        ("attn_qkv", r"(c_attn|query_key_value|qkv_proj|Wqkv)"),
        ("attn_q", r"(q_proj|\bquery\b)"),
        ("attn_k", r"(k_proj|\bkey\b)"),
        ("attn_v", r"(v_proj|\bvalue\b)"),
        ("attn_o", r"(o_proj|out_proj|attn\.c_proj|attention\.dense\b|self_attn\.dense\b)"),
        ("mlp_gate", r"(gate_proj|\bw1\b)"),
        ("mlp_up", r"(up_proj|c_fc|dense_h_to_4h|\bfc1\b|fc_in|\bw3\b)"),
        ("mlp_down", r"(down_proj|mlp\.c_proj|dense_4h_to_h|\bfc2\b|fc_out|\bw2\b)"),
    )
)
_LAYER = re.compile(r"\.(?:layers|h|layer|blocks|block)\.(\d+)\.")


@dataclass(frozen=True)
class FTGDResult:
    """What FTGD on one task leaves behind: compact, picklable, model-free.

    ``delta[name] = (indices, values)``: sorted flat int32 indices into the tensor and the
    fp16 values of ``tuned - base`` at the entries that changed. ``masks[name]`` is ``None``
    when the mask equals the changed entries (the usual case, to avoid storing the indices
    twice), else sorted int32 indices (sparse masks) or ``np.packbits`` of the flat mask
    (dense masks, fraction > 1/32); read masks through :meth:`mask_indices` /
    :meth:`mask_bool` / :meth:`packed_mask`.
    """

    config: dict[str, Any]
    fingerprint: str
    names: tuple[str, ...]
    tensor_sizes: dict[str, int]
    delta: dict[str, tuple[np.ndarray, np.ndarray]]
    masks: dict[str, np.ndarray | None]
    counts_per_tensor: dict[str, int]
    mask_distribution: dict[str, Any]
    curve: dict[str, list[float]]
    tune_before: dict[str, float]
    sketch: np.ndarray  # fp16, scaled to max |.| = 1
    sketch_scale: float
    grad_sq_norm: float  # exact |g_task|^2 over the selectable parameters
    n_tune_pairs: int
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    # ---- masks
    def mask_indices(self, name: str) -> np.ndarray:
        m = self.masks[name]
        if m is None:
            return self.delta[name][0]
        if m.dtype == np.uint8:
            return np.flatnonzero(np.unpackbits(m, count=self.tensor_sizes[name])).astype(np.int32)
        return m

    def mask_bool(self, name: str) -> np.ndarray:
        out = np.zeros(self.tensor_sizes[name], dtype=bool)
        out[self.mask_indices(name)] = True
        return out

    def global_mask_indices(self) -> np.ndarray:
        """Mask as int64 indices into the concatenation of the selectable tensors (``names`` order)."""
        parts, offset = [], 0
        for n in self.names:
            parts.append(self.mask_indices(n).astype(np.int64) + offset)
            offset += self.tensor_sizes[n]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def packed_mask(self) -> np.ndarray:
        """Per-tensor ``np.packbits`` masks concatenated (padding bits are 0, so Jaccard is exact)."""
        return np.concatenate([np.packbits(self.mask_bool(n)) for n in self.names])

    @property
    def n_selectable(self) -> int:
        return int(sum(self.tensor_sizes.values()))

    @property
    def n_masked(self) -> int:
        return int(sum(self.counts_per_tensor.values()))

    @property
    def n_changed(self) -> int:
        return int(sum(len(i) for i, _ in self.delta.values()))

    def nbytes(self) -> int:
        """Bytes of the array payload (what dominates the pickled size)."""
        total = self.sketch.nbytes
        for idx, val in self.delta.values():
            total += idx.nbytes + val.nbytes
        total += sum(m.nbytes for m in self.masks.values() if m is not None)
        return int(total)


# ----------------------------------------------------------------------------- parameters


def selectable_parameters(model: torch.nn.Module, include_embeddings: bool = False) -> list[tuple[str, torch.Tensor]]:
    """(name, parameter) pairs FTGD may change, in ``named_parameters`` order (tied ones once)."""
    excluded: set[int] = set()
    if not include_embeddings:
        for mod in model.modules():
            if isinstance(mod, torch.nn.Embedding):  # token and learned position embeddings
                excluded.update(id(p) for p in mod.parameters(recurse=False))
        for mod in (model.get_input_embeddings(), model.get_output_embeddings()):
            if mod is not None:
                excluded.update(id(p) for p in mod.parameters(recurse=False))
    out = [(n, p) for n, p in model.named_parameters() if id(p) not in excluded and p.is_floating_point()]
    if not out:
        raise FTGDError("the model has no selectable parameters")
    return out


def module_type(name: str) -> str:
    """Module type of a parameter name (one of :data:`MODULE_TYPES`)."""
    for kind, pat in _MODULE_PATTERNS:
        if pat.search(name):
            return kind
    return "other"


def layer_label(name: str) -> str:
    """Block index as a string, ``embed`` for embeddings, ``final`` for the rest (final norm)."""
    m = _LAYER.search(name)
    if m:
        return m.group(1)
    return "embed" if module_type(name) == "embed" else "final"


def mask_distribution(counts: Mapping[str, int]) -> dict[str, Any]:
    """Counts of masked entries per (layer, module type): ``{layers, modules, counts}``.

    Every selectable tensor should be in ``counts`` (zeros included) so the axes cover the model.
    """

    def layer_key(lab: str) -> tuple[int, int]:
        return (0, -1) if lab == "embed" else (2, 0) if lab == "final" else (1, int(lab))

    layers = sorted({layer_label(n) for n in counts}, key=layer_key)
    present = {module_type(n) for n in counts}
    modules = [m for m in MODULE_TYPES if m in present]
    table = np.zeros((len(layers), len(modules)), dtype=np.int64)
    for n, c in counts.items():
        table[layers.index(layer_label(n)), modules.index(module_type(n))] += int(c)
    return {"layers": layers, "modules": modules, "counts": table.tolist()}


@contextlib.contextmanager
def _grads_on(params: Sequence[torch.Tensor]) -> Iterator[None]:
    """Enable grads on ``params`` only; restore every flag and drop ``.grad`` on exit."""
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(True)
        yield
    finally:
        for p, f in zip(params, flags, strict=True):
            p.requires_grad_(f)
            p.grad = None


def _check_pairs(pairs: Sequence[MinimalPair], what: str) -> None:
    if not pairs:
        raise FTGDError(f"FTGD needs at least one {what} pair")


# ----------------------------------------------------------------------------- gradients


def _losses(margins: torch.Tensor, loss: str) -> torch.Tensor:
    # -log sigmoid(m) = softplus(-m): stable for large |m|
    return -margins if loss == "diff" else torch.nn.functional.softplus(-margins)


def _batch_grad(
    loaded: LoadedModel, params: Sequence[torch.Tensor], pairs: Sequence[MinimalPair], loss: str, scale: float
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Gradients of ``scale * sum(loss(margin))`` w.r.t. ``params`` (grads on), and the margins."""
    margins = margins_with_grad(loaded, pairs)
    total = _losses(margins, loss).sum() * scale
    grads = torch.autograd.grad(total, list(params), allow_unused=True)
    out = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    return out, margins.detach()


def task_gradient(
    loaded: LoadedModel, pairs: Sequence[MinimalPair], cfg: FTGDConfig | None = None
) -> dict[str, torch.Tensor]:
    """``g_task`` = mean gradient differential over the first ``cfg.mask_pairs`` pairs, per selectable tensor."""
    grads, _ = _task_gradient(loaded, pairs, cfg or FTGDConfig())
    return grads


def _task_gradient(
    loaded: LoadedModel, pairs: Sequence[MinimalPair], cfg: FTGDConfig, loss: str = "diff"
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    _check_pairs(pairs, "tune")
    sel = selectable_parameters(loaded.model, cfg.include_embeddings)
    names, params = [n for n, _ in sel], [p for _, p in sel]
    use = list(pairs[: cfg.mask_pairs])
    acc: list[torch.Tensor] | None = None
    margins = []
    with _grads_on(params):
        for s in range(0, len(use), GRAD_CHUNK):
            g, m = _batch_grad(loaded, params, use[s : s + GRAD_CHUNK], loss, 1.0 / len(use))
            margins.append(m)
            if acc is None:
                acc = g
            else:
                for a, b in zip(acc, g, strict=True):
                    a.add_(b)
    assert acc is not None
    return dict(zip(names, acc, strict=True)), torch.cat(margins).double().cpu().numpy()


# ----------------------------------------------------------------------------- masks


def _topk_global(scores: Mapping[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Exact global top-k of ``|scores|`` without concatenating (CPU memory and time).

    A threshold from a strided sample picks candidates (about 2k); exact top-k runs on those.
    """
    names = list(scores)
    total = sum(scores[n].numel() for n in names)
    if k <= 0:
        return {n: torch.zeros(0, dtype=torch.long, device=scores[n].device) for n in names}
    if k >= total:
        return {n: torch.arange(scores[n].numel(), device=scores[n].device) for n in names}
    stride = 61  # prime: does not alias with power-of-two or 64-multiple row widths
    sample = torch.cat([scores[n].reshape(-1)[::stride].abs().float() for n in names])
    for factor in (2.0, 8.0, 0.0):
        if factor == 0.0:
            thr = -1.0
        else:
            q = max(0.0, 1.0 - factor * k / total)
            pos = min(sample.numel(), max(1, int(q * sample.numel())))
            thr = float(torch.kthvalue(sample, pos).values) if q > 0 else -1.0
        vals, owner, idx = [], [], []
        n_cand = 0
        for t, n in enumerate(names):
            a = scores[n].reshape(-1).abs()
            sel = torch.nonzero(a >= thr).squeeze(1) if thr >= 0 else torch.arange(a.numel(), device=a.device)
            vals.append(a[sel].float())
            idx.append(sel)
            owner.append(torch.full((sel.numel(),), t, dtype=torch.long, device=a.device))
            n_cand += sel.numel()
        if n_cand >= k:
            break
    v, o, ix = torch.cat(vals), torch.cat(owner), torch.cat(idx)
    # k-th largest by kthvalue, then ties at the threshold in candidate order: exact, and much
    # faster than topk when k is a large share of the candidates
    kth = torch.kthvalue(v, v.numel() - k + 1).values
    above = v > kth
    need = k - int(above.sum())
    ties = torch.nonzero(v == kth).squeeze(1)[:need]
    keep = torch.nonzero(above).squeeze(1)
    keep = torch.sort(torch.cat([keep, ties])).values if need > 0 else keep
    # candidates are laid out tensor by tensor with sorted indices, so sorted ``keep`` is too
    o, ix = o[keep], ix[keep]
    counts = torch.bincount(o, minlength=len(names)).tolist()
    return dict(zip(names, torch.split(ix, counts), strict=True))


def select_mask(scores: Mapping[str, torch.Tensor], fraction: float, scope: str) -> dict[str, torch.Tensor]:
    """Sorted flat indices of the top ``fraction`` of ``|scores|``: over all tensors, or per tensor."""
    if scope == "per_tensor":
        out = {}
        for n, s in scores.items():
            k = int(round(fraction * s.numel()))
            flat = s.reshape(-1).abs()
            out[n] = torch.sort(torch.topk(flat, min(k, flat.numel()), sorted=False).indices).values
        return out
    total = sum(s.numel() for s in scores.values())
    return _topk_global(scores, int(round(fraction * total)))


def _encode_mask(mask_idx: np.ndarray, delta_idx: np.ndarray, size: int) -> np.ndarray | None:
    if mask_idx.shape == delta_idx.shape and np.array_equal(mask_idx, delta_idx):
        return None
    if mask_idx.size * 32 < size:
        return mask_idx.astype(np.int32)
    bits = np.zeros(size, dtype=bool)
    bits[mask_idx] = True
    return np.packbits(bits)


# ----------------------------------------------------------------------------- sketch


@lru_cache(maxsize=4)
def _sign_pattern(length: int, seed: int) -> torch.Tensor:
    """±1 pattern from splitmix64 of the position: portable and well mixed (uint64 wraps)."""
    with np.errstate(over="ignore"):
        z = np.arange(length, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    signs = 1.0 - 2.0 * (z >> np.uint64(63)).astype(np.float32)
    return torch.from_numpy(np.concatenate([signs, signs]))  # doubled: slices never wrap


def _name_offsets(name: str, dim: int, seed: int) -> tuple[int, int]:
    h = hashlib.blake2b(f"{seed}\x1f{name}".encode(), digest_size=16).digest()
    return int.from_bytes(h[:8], "little") % dim, int.from_bytes(h[8:], "little") % (dim + 1)


def gradient_sketch(grads: Mapping[str, torch.Tensor], dim: int = 2**22, seed: int = SKETCH_SEED) -> np.ndarray:
    """Count-sketch (float32, length ``dim``) of per-tensor gradients; see the module docstring."""
    pattern = _sign_pattern(dim + 1, seed)
    period = dim + 1
    acc = torch.zeros(2 * dim, dtype=torch.float32)
    for name, g in grads.items():
        flat = g.detach().reshape(-1).float().cpu()
        bucket0, sign0 = _name_offsets(name, dim, seed)
        for start in range(0, flat.numel(), dim):  # chunks of <= dim entries: slices never wrap twice
            chunk = flat[start : start + dim]
            n = chunk.numel()
            so, bo = (sign0 + start) % period, (bucket0 + start) % dim
            acc[bo : bo + n].addcmul_(chunk, pattern[so : so + n])
    return (acc[:dim] + acc[dim:]).numpy()


def sketch_cosine(a: FTGDResult, b: FTGDResult) -> float:
    """Estimated cosine of two tasks' ``g_task`` from their sketches."""
    return float(gradient_similarity([a, b])[0, 1])


def gradient_similarity(results: Sequence[FTGDResult]) -> np.ndarray:
    """G: estimated cosine matrix of ``g_task`` over the selectable parameters (diagonal 1)."""
    dims = {r.sketch.size for r in results}
    if len(dims) > 1:
        raise FTGDError(f"gradient sketches of different sizes {sorted(dims)}: tune all tasks with one config")
    if len({r.names for r in results}) > 1:
        raise FTGDError("gradient sketches cover different parameters: use one model and one config")
    S = np.stack([r.sketch.astype(np.float64) for r in results])
    norms = np.linalg.norm(S, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    G = (S @ S.T) / safe[:, None] / safe[None, :]
    G[norms == 0] = 0.0
    G[:, norms == 0] = 0.0
    np.fill_diagonal(G, 1.0)
    return np.clip(G, -1.0, 1.0)


# ----------------------------------------------------------------------------- tuning


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
    b1, b2 = _ADAM_BETAS
    bc1, bc2 = 1 - b1**step, 1 - b2**step
    for s, g in zip(states, gs, strict=True):
        g = g * coef
        s.m.mul_(b1).add_(g, alpha=1 - b1)
        s.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        update = (s.m / bc1) / ((s.v / bc2).sqrt() + _ADAM_EPS) * cfg.lr
        s.master.sub_(torch.where(s.active, update, torch.zeros_like(update)))
        s.param.data.view(-1)[s.idx] = s.master.to(s.param.dtype)
    return norm


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
    _check_pairs(pairs, "tune")
    t0 = time.perf_counter()
    model = loaded.model
    sel = selectable_parameters(model, cfg.include_embeddings)
    names = [n for n, _ in sel]
    params = dict(sel)
    for n, p in sel:
        if not p.is_contiguous():
            raise FTGDError(f"parameter {n} is not contiguous; FTGD writes entries through a flat view")
    sizes = {n: int(p.numel()) for n, p in sel}

    g_task, mask_margins = _task_gradient(loaded, pairs, cfg)
    grad_sq = float(sum(float(torch.dot(g.reshape(-1).double(), g.reshape(-1).double())) for g in g_task.values()))
    sketch = gradient_sketch(g_task, cfg.sketch_dim)
    mask = select_mask(g_task, cfg.mask_fraction, cfg.mask_scope)
    del g_task
    if progress:
        progress(1)

    # Fixed mask: only tensors holding mask entries need gradients (saves weight-grad matmuls).
    tuned_names = [n for n in names if mask[n].numel()] if cfg.mask_update == "fixed" else names
    empty = torch.zeros(0, dtype=torch.long)
    # per_step: nothing is tracked until a step's own mask says so (the g_task mask is not used)
    states = {n: _TensorState.create(params[n], mask[n] if cfg.mask_update == "fixed" else empty) for n in tuned_names}
    curve: dict[str, list[float]] = {"step": [], "accuracy": [], "mean_margin": [], "loss": [], "grad_norm": []}
    batches = tune_batches(len(pairs), cfg.batch_size, cfg.seed)
    try:
        with _grads_on([params[n] for n in tuned_names]), torch.no_grad():
            for step in range(1, cfg.steps + 1):
                batch = [pairs[i] for i in next(batches)]
                with torch.enable_grad():
                    grads, margins = _batch_grad(
                        loaded, [params[n] for n in tuned_names], batch, cfg.loss, 1.0 / len(batch)
                    )
                if cfg.mask_update == "per_step":
                    step_mask = select_mask(
                        dict(zip(tuned_names, grads, strict=True)), cfg.mask_fraction, cfg.mask_scope
                    )
                    for n in tuned_names:
                        states[n].track(step_mask[n])
                norm = _adam_step([states[n] for n in tuned_names], grads, step, cfg)
                del grads
                met = task_metrics(margins.double().cpu().numpy())
                curve["step"].append(float(step))
                curve["accuracy"].append(met["accuracy"])
                curve["mean_margin"].append(met["mean_margin"])
                curve["loss"].append(float(_losses(margins.double(), cfg.loss).mean()))
                curve["grad_norm"].append(norm)
                if progress:
                    progress(1)
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
                masks[n] = _encode_mask(m_idx, d_idx, sizes[n])
                counts[n] = int(m_idx.size)
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


# ----------------------------------------------------------------------------- applying updates

DeltaLike = FTGDResult | Mapping[str, tuple[np.ndarray, np.ndarray]]


def _applied_stack(loaded: LoadedModel) -> list[int]:
    return loaded.__dict__.setdefault("_ftgd_applied", [])


def is_applied(loaded: LoadedModel, delta: DeltaLike) -> bool:
    """Whether ``delta`` is currently applied to ``loaded`` by :func:`applied` (innermost or not)."""
    return id(delta) in _applied_stack(loaded)


def any_applied(loaded: LoadedModel) -> bool:
    return bool(_applied_stack(loaded))


@contextlib.contextmanager
def applied(loaded: LoadedModel, delta: DeltaLike) -> Iterator[LoadedModel]:
    """Apply ``base + fp16 delta`` in place; on exit write the saved originals back (bit-identical)."""
    if isinstance(delta, FTGDResult):
        if delta.fingerprint and delta.fingerprint != loaded.fingerprint:
            raise FTGDError(
                f"this FTGD update was tuned on another model (fingerprint {delta.fingerprint[:10]}, "
                f"loaded {loaded.fingerprint[:10]}); recompute it for {loaded.spec.label}"
            )
        items = delta.delta
    else:
        items = delta
    params = dict(loaded.model.named_parameters())
    saved: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    stack = _applied_stack(loaded)
    pushed = False
    try:
        with torch.no_grad():
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
        stack.append(id(delta))
        pushed = True
        yield loaded
    finally:
        if pushed:
            stack.pop()
        with torch.no_grad():
            for flat, it, orig in reversed(saved):
                flat[it] = orig


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads (``None``: unchanged), then restore.

    Why: on a small shared CPU box, backward passes with 2 threads were measured 18x slower
    than with 1 (SmolLM2 FTGD step: 28 s vs 1.1 s, with one other busy process), while
    forward-only scoring barely cares. Wrap FTGD / gradient units in ``cpu_threads(1)`` there.
    The setting is process-wide: do not use it while other threads run torch work.
    """
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------- low impact


def _lm_loss_tensor(loaded: LoadedModel, texts: Sequence[str]) -> torch.Tensor:
    """Differentiable mean NLL per token of sentences (BOS prepended), one packed forward."""
    ids = encode(loaded.tokenizer, loaded.bos_id, texts)
    batch = pack([Row(tuple(x)) for x in ids], loaded.device, loaded.dtype, with_prefix=True)
    return -token_logprobs(loaded.model, batch).mean()


def lm_loss(loaded: LoadedModel, texts: Sequence[str]) -> float:
    """Mean NLL per token (nats) of ``texts`` under the model as it is now."""
    if not texts:
        raise FTGDError("lm_loss needs at least one text")
    logp, n_tok = PairScorer(loaded, ScoringConfig()).sentence_logprobs(texts)
    return float(-logp.sum() / n_tok.sum())


@contextlib.contextmanager
def conventional_finetune(
    loaded: LoadedModel,
    pairs: Sequence[MinimalPair],
    steps: int = 20,
    lr: float = 1e-4,
    batch_size: int = 8,
    grad_clip: float = 1.0,
    seed: int = 0,
) -> Iterator[dict[str, list[float]]]:
    """Baseline of METHODS s3: Adam on the LM loss of the good sentences, all parameters.

    A context manager: inside, the model is tuned (yields ``{"loss": [...]}``); on exit every
    parameter is restored bit for bit. Same batching, clip and eval mode (no dropout) as FTGD.
    """
    _check_pairs(pairs, "tune")
    params = list(loaded.model.parameters())  # tied tensors once
    backup = [p.detach().clone() for p in params]
    curve: list[float] = []
    try:
        with _grads_on(params):
            opt = torch.optim.Adam(params, lr=lr, betas=_ADAM_BETAS, eps=_ADAM_EPS)
            batches = tune_batches(len(pairs), batch_size, seed)
            for _ in range(steps):
                texts = [pairs[i].good for i in next(batches)]
                opt.zero_grad(set_to_none=True)
                loss = _lm_loss_tensor(loaded, texts)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
                opt.step()
                curve.append(float(loss.detach()))
            del opt
        yield {"loss": curve}
    finally:
        with torch.no_grad():
            for p, b in zip(params, backup, strict=True):
                p.data.copy_(b)
