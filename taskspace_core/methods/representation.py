"""Representation similarity (METHODS s5c): how alike two tasks' good-vs-bad hidden states are.

For each task, the mean over its eval pairs of ``h(good) - h(bad)``, the hidden state of
the sentence's last token at the output of every transformer block (HF ``hidden_states[1:]``;
the last one after the final norm, as the model returns it). The task space is the cosine
between tasks of these difference vectors: per layer (``R_layers[l]``) and over all layers
concatenated (``R``). Forward passes only, one ``rep`` unit per (model, task): O(N).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from taskspace_core.configs import ProbeConfig
from taskspace_core.methods.base import per_task
from taskspace_core.methods.registry import (
    Assembly,
    MatrixView,
    Method,
    UnitKind,
    register,
    register_kind,
    scoring_work,
)

VERSION = 1
BATCH = 32  # sentences per forward pass (only speed: right padding leaves real positions unchanged)


def key_parts(pcfg: ProbeConfig) -> dict[str, Any]:
    return {**pcfg.split_key(), "representation": {"version": VERSION, "position": "last", "layers": "blocks"}}


def last_token_states(loaded: Any, texts: list[str]) -> np.ndarray:
    """[n_texts, n_layers, hidden] float64: each block's output at the last token (BOS prepended)."""
    import torch

    from taskspace_core.packing import encode

    ids = encode(loaded.tokenizer, loaded.bos_id, texts)
    out = []
    for s in range(0, len(ids), BATCH):
        chunk = ids[s : s + BATCH]
        width = max(len(x) for x in chunk)
        inp = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros_like(inp)
        for r, x in enumerate(chunk):
            inp[r, : len(x)] = torch.tensor(x)
            mask[r, : len(x)] = 1
        with torch.inference_mode():
            res = loaded.model(
                input_ids=inp.to(loaded.device), attention_mask=mask.to(loaded.device), output_hidden_states=True
            )
        last = torch.tensor([len(x) - 1 for x in chunk], device=loaded.device)
        rows = torch.arange(len(chunk), device=loaded.device)
        layers = [h[rows, last].double().cpu() for h in res.hidden_states[1:]]
        out.append(torch.stack(layers, dim=1).numpy())
    return np.concatenate(out)


def rep_unit(loaded: Any, task: Any, pcfg: ProbeConfig) -> dict[str, Any]:
    """``{task, diff: [n_layers, hidden] mean of h(good) - h(bad) over the eval pairs, n}``."""
    pairs = task.split(pcfg.n_tune, pcfg.n_eval)[1]
    good = last_token_states(loaded, [p.good for p in pairs])
    bad = last_token_states(loaded, [p.bad for p in pairs])
    return {"task": task.name, "diff": (good - bad).mean(axis=0).astype(np.float32), "n": len(pairs)}


def cosine(X: np.ndarray) -> np.ndarray:
    """Cosine between the rows of ``X`` (a zero row gives NaN: it has no direction)."""
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1)
    U = np.divide(X, norms[:, None], out=np.full_like(X, np.nan), where=norms[:, None] > 0)
    return np.clip(U @ U.T, -1.0, 1.0)


def _assemble(asm: Assembly) -> dict[str, Any]:
    rep = asm.values["rep"]
    D = np.stack([rep[t]["diff"] for t in asm.names]).astype(np.float64)  # [N, L, H]
    per_layer = np.stack([cosine(D[:, layer, :]) for layer in range(D.shape[1])])
    return {"R": cosine(D.reshape(len(D), -1)), "R_layers": per_layer}


REP = register_kind(UnitKind("rep", "task", key_parts, per_task(rep_unit), seconds=2.5, work=scoring_work))
register(
    Method(
        name="representation",
        label="representation similarity",
        config_name="representation",
        kinds=("base", "rep"),
        assemble=_assemble,
        fields=("R", "R_layers"),
        default=False,  # new in this version: a config that lists no method keeps its old plan
        views=(
            MatrixView(
                "R",
                "representation similarity R (cosine of good − bad hidden states)",
                True,
                True,
                ("R",),
                statistic="R",
            ),
        ),
    )
)
