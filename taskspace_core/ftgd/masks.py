"""Top-k masks of ``|g|``: exact, over all selectable tensors (global) or tensor by tensor."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def _candidates(scores: Mapping[str, torch.Tensor], names: list[str], k: int, total: int) -> tuple[torch.Tensor, ...]:
    """(|value|, owning tensor, flat index) of at least ``k`` entries that contain the top k.

    A threshold from a strided sample picks candidates (about 2k); it is lowered until enough pass.
    """
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
    return torch.cat(vals), torch.cat(owner), torch.cat(idx)


def _topk_global(scores: Mapping[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Exact global top-k of ``|scores|`` without concatenating (CPU memory and time)."""
    names = list(scores)
    total = sum(scores[n].numel() for n in names)
    if k <= 0:
        return {n: torch.zeros(0, dtype=torch.long, device=scores[n].device) for n in names}
    if k >= total:
        return {n: torch.arange(scores[n].numel(), device=scores[n].device) for n in names}
    v, o, ix = _candidates(scores, names, k, total)
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
