"""Packing minimal pairs into model rows that share their common prefix (METHODS.md s2).

A row holds ``[prefix][good suffix][bad suffix]``. A 4-D attention mask keeps the bad
suffix from seeing the good suffix, and its position ids restart at the divergence
point, so each suffix is scored exactly as in its own sentence while the shared prefix
is computed once. A plain sentence is a row with a prefix only. Short rows share a lane
(one sequence of the batch) laid out as a prefix tree: each position attends to its own
path only, so rows that begin alike (the BOS, a template's first words) share those
positions, and batches hold little padding. The last token of a sentence predicts nothing
and only it would attend to itself, so it is never laid out. The forward pass is
differentiable, so FTGD builds its gradients on the same code path that scoring uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

PREFIX, GOOD, BAD = 0, 1, 2


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


def _paths(row: Row) -> tuple[tuple[int, ...], ...]:
    """The token sequences a row lays out: each of its sentences without its last token."""
    if not row.good and not row.bad:
        return (row.prefix[: n_inputs(row)],)
    return row.prefix + row.good[: max(len(row.good) - 1, 0)], row.prefix + row.bad[: max(len(row.bad) - 1, 0)]


class _Trie:
    """Positions of one lane: a token is laid out once per distinct path from the lane's start, so
    rows that begin alike (the BOS, a template's first words) share those positions."""

    def __init__(self) -> None:
        self.node: dict[tuple[int, int], int] = {}  # (parent position, token) -> position
        self.parent: list[int] = []
        self.token: list[int] = []
        self.depth: list[int] = []

    def cost(self, row: Row) -> int:
        """Positions the row would add."""
        new: set[tuple[int, ...]] = set()
        for path in _paths(row):
            at = -1
            for d, tok in enumerate(path):
                at = self.node.get((at, tok), -2) if at >= -1 else -2  # -2: off the tree from here on
                if at == -2:
                    new.add(path[: d + 1])
        return len(new)

    def add(self, row: Row) -> list[list[int]]:
        """Insert the row; the positions along each of its paths."""
        out = []
        for path in _paths(row):
            at, along = -1, []
            for d, tok in enumerate(path):
                nxt = self.node.get((at, tok))
                if nxt is None:
                    nxt = self.node[(at, tok)] = len(self.token)
                    self.parent.append(at), self.token.append(tok), self.depth.append(d)
                along.append(nxt)
                at = nxt
            out.append(along)
        return out


def plan_lanes(rows: Sequence[Row], min_width: int) -> tuple[list[list[int]], list[int]]:
    """Rows grouped into lanes, and each lane's width (the positions it lays out).

    Rows sorted by their tokens are cut into chunks that share more than their first token and
    fit ``min_width`` (a longer row is a chunk of its own); chunks then go into lanes best fit,
    largest first, each after the first sharing the lane's BOS. Rows that begin alike thus share
    positions, and a batch of lanes holds little padding."""
    paths = [_paths(r)[0] for r in rows]
    chunks: list[list[int]] = []
    sizes: list[int] = []
    trie = _Trie()
    for i in sorted(range(len(rows)), key=lambda j: paths[j]):
        c = trie.cost(rows[i]) if chunks else 0
        prev = paths[chunks[-1][-1]] if chunks else ()
        if not chunks or sizes[-1] + c > min_width or prev[:2] != paths[i][:2]:
            trie = _Trie()
            chunks.append([]), sizes.append(0)
            c = trie.cost(rows[i])
        trie.add(rows[i])
        chunks[-1].append(i)
        sizes[-1] += c
    lanes: list[list[int]] = []
    room: dict[tuple[tuple[int, ...], int], list[int]] = {}  # (first token, room left) -> lanes
    for k in sorted(range(len(chunks)), key=lambda j: -sizes[j]):
        first = paths[chunks[k][0]][:1]
        need = sizes[k] - 1  # its first position is the lane's BOS
        fit = next((r for r in range(need, min_width) if room.get((first, r))), None)
        if fit is None:
            lanes.append(list(chunks[k]))
            li, left = len(lanes) - 1, max(sizes[k], min_width) - sizes[k]
        else:
            li = room[(first, fit)].pop()
            lanes[li] += chunks[k]
            left = fit - need
        room.setdefault((first, left), []).append(li)
    widths = []
    for lane in lanes:  # exact: chunks may share more than the BOS
        t = _Trie()
        for i in lane:
            t.add(rows[i])
        widths.append(len(t.token))
    return lanes, widths


def pack(rows: Sequence[Row], device: torch.device, dtype: torch.dtype, with_prefix: bool = True) -> PackedBatch:
    """Rows in as few lanes as fit, none wider than the longest row (see :func:`pack_lanes`)."""
    lanes, _ = plan_lanes(rows, max(n_inputs(r) for r in rows))
    return pack_lanes(rows, lanes, device, dtype, with_prefix)


def pack_lanes(
    rows: Sequence[Row],
    lanes: Sequence[Sequence[int]],
    device: torch.device,
    dtype: torch.dtype,
    with_prefix: bool = True,
) -> PackedBatch:
    """Lay rows out lane by lane (``lanes`` index into ``rows``), right-padded. A lane is a prefix
    tree: each position attends to the positions on its own path only (its position id is its
    depth), so a row scores as if alone while the tokens it shares with rows before it in the lane
    are computed once. ``target_row`` is a row's index in ``rows``. ``with_prefix=False`` skips
    scoring each pair's shared prefix (it cancels in a margin; skipping it saves the LM head there)."""
    tries = [_Trie() for _ in lanes]
    lane_of, read, tgt, trow, tkind = [], [], [], [], []  # read: the lane position a target is read from
    for li, lane in enumerate(lanes):
        for row_no in lane:
            r = rows[row_no]
            along = tries[li].add(r)
            p = len(r.prefix)
            sentences = [r.prefix] if len(along) == 1 else [r.prefix + r.good, r.prefix + r.bad]
            for s, (sent, pos_of) in enumerate(zip(sentences, along, strict=True)):
                for t in range(1, len(sent)):  # target t is read where the path holds sent[:t]
                    kind = PREFIX if t < p or len(along) == 1 else (GOOD if s == 0 else BAD)
                    if kind == PREFIX and (s == 1 or not with_prefix):
                        continue
                    lane_of.append(li), read.append(pos_of[t - 1]), tgt.append(sent[t])
                    trow.append(row_no), tkind.append(kind)
    length = max(len(t.token) for t in tries)
    ids = np.zeros((len(lanes), length), dtype=np.int64)
    pos = np.zeros((len(lanes), length), dtype=np.int64)
    allowed = np.zeros((len(lanes), length, length), dtype=bool)
    allowed[:, np.arange(length), np.arange(length)] = True  # padded queries see themselves: no all-masked rows
    for li, t in enumerate(tries):
        n = len(t.token)
        ids[li, :n], pos[li, :n] = t.token, t.depth
        for a, par in enumerate(t.parent):  # a position sees its path: its parent's view and itself
            if par >= 0:
                allowed[li, a, :a] = allowed[li, par, :a]
    mask = torch.zeros((len(lanes), 1, length, length), dtype=dtype)
    mask.masked_fill_(~torch.from_numpy(allowed)[:, None], torch.finfo(dtype).min)
    return PackedBatch(
        input_ids=torch.from_numpy(ids).to(device),
        position_ids=torch.from_numpy(pos).to(device),
        attention_mask=mask.to(device),
        pred_index=torch.tensor(lane_of, dtype=torch.long, device=device) * length
        + torch.tensor(read, dtype=torch.long, device=device),
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
