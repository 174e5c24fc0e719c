"""Which parameters FTGD may change, and where they sit (layer, module type)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from taskspace_core.ftgd.config import FTGDError
from taskspace_core.tasks import MinimalPair

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
def grads_on(params: Sequence[torch.Tensor]) -> Iterator[None]:
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


def check_pairs(pairs: Sequence[MinimalPair], what: str) -> None:
    if not pairs:
        raise FTGDError(f"FTGD needs at least one {what} pair")
