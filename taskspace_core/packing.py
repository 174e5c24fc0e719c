"""Packing minimal pairs into model rows that share their common prefix (METHODS.md s2).

A row holds ``[prefix][good suffix][bad suffix]``. A 4-D attention mask keeps the bad
suffix from seeing the good suffix, and its position ids restart at the divergence
point, so each suffix is scored exactly as in its own sentence while the shared prefix
is computed once. A plain sentence is a row with a prefix only. Short rows share a lane
(one sequence of the batch), each masked off from the others, so batches hold little
padding. The last token of a sentence predicts nothing and only it would attend to
itself, so it is never laid out. The forward pass is differentiable, so FTGD builds its
gradients on the same code path that scoring uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

PREFIX, GOOD, BAD, PAD = 0, 1, 2, 3


@dataclass(frozen=True)
class Row:
    """Token ids of one packed row; ``good``/``bad`` are empty for a plain sentence."""

    prefix: tuple[int, ...]
    good: tuple[int, ...] = ()
    bad: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.prefix) + len(self.good) + len(self.bad)


def encode(tokenizer, bos_id: int, texts: Sequence[str]) -> list[tuple[int, ...]]:
    """Token ids of each text with the BOS prepended (no other special tokens)."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [(bos_id, *x) for x in ids]


def pair_row(good: Sequence[int], bad: Sequence[int]) -> Row:
    """Split two encoded sentences at their first differing token."""
    p = 0
    limit = min(len(good), len(bad))
    while p < limit and good[p] == bad[p]:
        p += 1
    p = max(p, 1)  # the BOS is always shared; it is the first predictor
    return Row(tuple(good[:p]), tuple(good[p:]), tuple(bad[p:]))


@dataclass
class PackedBatch:
    """Tensors for one forward pass plus the bookkeeping to read scores back."""

    input_ids: torch.Tensor  # [B, L]
    position_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor  # [B, 1, L, L] additive float
    pred_index: torch.Tensor  # [T] flat index (row * L + pos) of the predicting position
    target_ids: torch.Tensor  # [T]
    target_row: torch.Tensor  # [T] row in batch
    target_kind: torch.Tensor  # [T] PREFIX / GOOD / BAD
    n_rows: int


def n_inputs(row: Row) -> int:
    """Tokens the row lays out: the last token of each part that ends a sentence predicts nothing
    (and, as keys, only itself sees it), so it is not fed to the model."""
    g, b = len(row.good), len(row.bad)
    if not g and not b:
        return max(1, len(row.prefix) - 1)
    return len(row.prefix) + max(g - 1, 0) + max(b - 1, 0)


def plan_lanes(lengths: Sequence[int], min_width: int) -> list[list[int]]:
    """Indices of rows grouped into lanes: best fit, longest first. A lane is as wide as the row
    that opens it, at least ``min_width``; shorter rows fill its room, so a batch of lanes holds
    little padding while no row waits on attention wider than its own lane."""
    lanes: list[list[int]] = []
    by_room: dict[int, list[int]] = {}  # room left -> lanes with that room
    for i in sorted(range(len(lengths)), key=lambda j: -lengths[j]):
        need = lengths[i]
        fit = next((r for r in range(need, max(by_room, default=-1) + 1) if by_room.get(r)), None)
        if fit is None:
            lanes.append([i])
            room, k = max(need, min_width) - need, len(lanes) - 1
        else:
            k = by_room[fit].pop()
            lanes[k].append(i)
            room = fit - need
        by_room.setdefault(room, []).append(k)
    return lanes


def pack(rows: Sequence[Row], device: torch.device, dtype: torch.dtype, with_prefix: bool = True) -> PackedBatch:
    """Rows in as few lanes as fit, none wider than the longest row (see :func:`pack_lanes`)."""
    lengths = [n_inputs(r) for r in rows]
    return pack_lanes(rows, plan_lanes(lengths, max(lengths)), device, dtype, with_prefix)


def pack_lanes(
    rows: Sequence[Row],
    lanes: Sequence[Sequence[int]],
    device: torch.device,
    dtype: torch.dtype,
    with_prefix: bool = True,
) -> PackedBatch:
    """Lay rows out lane by lane (``lanes`` index into ``rows``), one after another in a lane,
    right-padded. A row sees only itself (its positions restart at 0), so a lane of several rows
    scores each as if alone. ``target_row`` is a row's index in ``rows``. ``with_prefix=False``
    skips scoring the shared prefix tokens (they cancel in a margin, and skipping them saves the
    LM head there)."""
    n = len(lanes)
    length = max(sum(n_inputs(rows[i]) for i in lane) for lane in lanes)
    ids = torch.zeros((n, length), dtype=torch.long)
    pos = torch.zeros((n, length), dtype=torch.long)
    region = torch.full((n, length), PAD, dtype=torch.long)
    segment = torch.full((n, length), -1, dtype=torch.long)
    pred, tgt, trow, tkind = [], [], [], []
    for li, lane in enumerate(lanes):
        at = 0  # where the lane's next row starts
        for row_no in lane:
            r = rows[row_no]
            g, b = len(r.good), len(r.bad)
            p = len(r.prefix) if g or b else n_inputs(r)  # a plain sentence drops its last token
            gi, bi = max(g - 1, 0), max(b - 1, 0)  # good/bad tokens laid out (all but the last)
            end = at + p + gi + bi
            ids[li, at:end] = torch.tensor(r.prefix[:p] + r.good[:gi] + r.bad[:bi])
            pos[li, at : at + p + gi] = torch.arange(p + gi)
            pos[li, at + p + gi : end] = torch.arange(p, p + bi)
            region[li, at : at + p], region[li, at + p : at + p + gi] = PREFIX, GOOD
            region[li, at + p + gi : end] = BAD
            segment[li, at:end] = row_no
            base = li * length + at
            if with_prefix:
                for t in range(1, len(r.prefix)):
                    pred.append(base + t - 1), tgt.append(r.prefix[t]), trow.append(row_no), tkind.append(PREFIX)
            for k in range(g):  # the first suffix token of each side is read from the last shared position
                pred.append(base + p + k - 1), tgt.append(r.good[k]), trow.append(row_no), tkind.append(GOOD)
            for k in range(b):
                src = p - 1 if k == 0 else p + gi + k - 1
                pred.append(base + src), tgt.append(r.bad[k]), trow.append(row_no), tkind.append(BAD)
            at = end
    q, kv = region[:, :, None], region[:, None, :]
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    same_row = (segment[:, :, None] == segment[:, None, :]) & (segment[:, None, :] >= 0)
    allowed = causal & same_row & ~((q == BAD) & (kv == GOOD))
    allowed |= torch.eye(length, dtype=torch.bool)  # padded queries see themselves: no all-masked softmax rows
    mask = torch.zeros((n, 1, length, length), dtype=dtype)
    mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
    return PackedBatch(
        input_ids=ids.to(device),
        position_ids=pos.to(device),
        attention_mask=mask.to(device),
        pred_index=torch.tensor(pred, dtype=torch.long, device=device),
        target_ids=torch.tensor(tgt, dtype=torch.long, device=device),
        target_row=torch.tensor(trow, dtype=torch.long, device=device),
        target_kind=torch.tensor(tkind, dtype=torch.long, device=device),
        n_rows=len(rows),
    )


def _final_logits(model: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    logits = model.get_output_embeddings()(hidden).float()  # float32 log-softmax even under bf16/fp16
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def token_logprobs(model: torch.nn.Module, batch: PackedBatch, head_chunk: int = 512) -> torch.Tensor:
    """log p(target | context) for every target of the batch, shape [T], float32.

    Runs the base model once, then the LM head once per predicting position (a pair's good and
    bad suffix are both first read from the last shared position), in chunks so that the
    vocabulary-sized logits never all sit in memory at once (512 rows: the fastest chunk on CPU).
    """
    out = model.base_model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=False,
    )
    hidden = out[0].reshape(-1, out[0].shape[-1])
    reads, read_of = torch.unique(batch.pred_index, return_inverse=True)
    order = torch.argsort(read_of, stable=True)  # targets grouped by the position they read
    starts = torch.searchsorted(read_of[order], torch.arange(0, reads.numel() + head_chunk, head_chunk)).tolist()
    parts = []
    for c, s in enumerate(range(0, reads.numel(), head_chunk)):
        logp = torch.log_softmax(_final_logits(model, hidden.index_select(0, reads[s : s + head_chunk])), dim=-1)
        t = order[starts[c] : starts[c + 1]]
        parts.append(logp[read_of[t] - s, batch.target_ids[t]])
    if not parts:
        return hidden.new_zeros(0, dtype=torch.float32)
    grouped = torch.cat(parts)
    return grouped.new_empty(grouped.shape).index_copy(0, order, grouped)  # back in target order


def row_sums(batch: PackedBatch, logp: torch.Tensor) -> torch.Tensor:
    """Sum of target log-probs per (row, kind): shape [n_rows, 3] for PREFIX, GOOD, BAD."""
    sums = logp.new_zeros(batch.n_rows * 3)
    return sums.index_add(0, batch.target_row * 3 + batch.target_kind, logp).view(batch.n_rows, 3)
