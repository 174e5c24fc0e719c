"""Packed rows leave out each sentence's last token and still give every target's plain log-prob."""

from __future__ import annotations

import torch

from taskspace_core.packing import (
    BAD,
    GOOD,
    PREFIX,
    Row,
    encode,
    n_inputs,
    pack,
    pack_lanes,
    pair_row,
    plan_lanes,
    token_logprobs,
)
from tests.tiny_models import tiny_loaded_model

SENTENCES = [
    ("The cat sleeps here.", "The cat sleep here."),
    ("Dogs run.", "Dogs run quickly."),  # good ends where bad goes on
    ("The woman is happy.", "The women is happy."),
    ("Who likes cats?", "Who likes cats?"),  # identical: a row with a prefix only
]


def plain_token_logprobs(lm, ids: tuple[int, ...]) -> list[float]:
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0].float(), -1)
    return [float(logp[t - 1, ids[t]]) for t in range(1, len(ids))]


def test_pair_rows_lay_out_no_last_token_and_score_every_target():
    lm = tiny_loaded_model("llama", seed=7)
    good = encode(lm.tokenizer, lm.bos_id, [g for g, _ in SENTENCES])
    bad = encode(lm.tokenizer, lm.bos_id, [b for _, b in SENTENCES])
    rows = [pair_row(g, b) for g, b in zip(good, bad, strict=True)]
    batch = pack(rows, lm.device, lm.dtype, with_prefix=True)
    assert batch.input_ids.shape[1] == max(n_inputs(r) for r in rows)
    for r in rows:  # two tokens fewer than the row when both suffixes go on past their first token
        assert n_inputs(r) == len(r) - (len(r.good) > 0) - (len(r.bad) > 0) - (not r.good and not r.bad)
    with torch.no_grad():
        logp = token_logprobs(lm.model, batch)
    for i, (g, b) in enumerate(zip(good, bad, strict=True)):
        mine = batch.target_row == i
        kinds = batch.target_kind[mine]
        got = logp[mine]
        want_g, want_b = plain_token_logprobs(lm, g), plain_token_logprobs(lm, b)
        p = len(rows[i].prefix)
        torch.testing.assert_close(got[kinds == PREFIX], torch.tensor(want_g[: p - 1]), atol=1e-4, rtol=0)
        torch.testing.assert_close(got[kinds == GOOD], torch.tensor(want_g[p - 1 :]), atol=1e-4, rtol=0)
        torch.testing.assert_close(got[kinds == BAD], torch.tensor(want_b[p - 1 :]), atol=1e-4, rtol=0)


def test_sentence_rows_drop_last_token_and_a_lone_bos_has_no_targets():
    lm = tiny_loaded_model("gpt2", seed=8)
    ids = encode(lm.tokenizer, lm.bos_id, ["The dogs run here today.", "A cat."])
    rows = [Row(tuple(x)) for x in ids] + [Row((lm.bos_id,))]
    batch = pack(rows, lm.device, lm.dtype)
    assert batch.input_ids.shape[1] == max(len(x) for x in ids) - 1
    with torch.no_grad():
        logp = token_logprobs(lm.model, batch)
    for i, x in enumerate(ids):
        torch.testing.assert_close(
            logp[batch.target_row == i], torch.tensor(plain_token_logprobs(lm, x)), atol=1e-4, rtol=0
        )
    assert int((batch.target_row == 2).sum()) == 0


def test_plan_lanes_shares_beginnings_and_fills_lanes_best_fit():
    rows = [
        Row((0, 1, 2), (3,), (4,)),  # lays out 0 1 2
        Row((0, 1, 5), (6, 7), (8, 7)),  # 0 1 5, then 6 and 8 after 5
        Row((0, 9), (3,), (4,)),  # 0 9
        Row(tuple(range(12))),  # a plain sentence longer than the width: 11 positions, a lane of its own
    ]
    # sorted: A, D, B, C. D does not fit A's chunk, so it is a chunk alone; B, then C (other first word).
    # Largest first: D opens a lane; B opens one of width 8 (room 3); A and C join it, each sharing the BOS
    # as planned, and A also shares B's second token, so the lane lays out 5 + 1 + 1 positions
    assert plan_lanes(rows, min_width=8) == ([[3], [1, 0, 2]], [11, 7])
    lanes, widths = plan_lanes(rows * 3, min_width=8)
    assert sorted(i for lane in lanes for i in lane) == list(range(12))
    long_rows = [lane for lane in lanes if any(i % 4 == 3 for i in lane)]
    assert sorted(long_rows) == [[3], [7], [11]]  # three copies of the long sentence, each in a lane of its own
    assert all(w <= 8 for lane, w in zip(lanes, widths, strict=True) if lane not in long_rows)
    assert sum(widths) < sum(n_inputs(r) for r in rows * 3) - len(lanes)  # more shared than one BOS per lane
    for lane, w in zip(lanes, widths, strict=True):  # the planned width is the packed one
        assert pack_lanes(rows * 3, [lane], torch.device("cpu"), torch.float32).input_ids.shape[1] == w


def test_rows_sharing_a_lane_score_as_if_alone_and_the_head_reads_each_position_once():
    lm = tiny_loaded_model("gpt_neox", seed=9)
    good = encode(lm.tokenizer, lm.bos_id, [g for g, _ in SENTENCES])
    bad = encode(lm.tokenizer, lm.bos_id, [b for _, b in SENTENCES])
    rows = [pair_row(g, b) for g, b in zip(good, bad, strict=True)] + [Row(tuple(good[0]))]
    batch = pack_lanes(rows, [[0, 1, 4], [3, 2]], lm.device, lm.dtype, with_prefix=True)
    # row 4 is row 0's good sentence: all its positions are row 0's; row 1 shares the BOS only
    assert batch.input_ids.shape == (2, n_inputs(rows[0]) + n_inputs(rows[1]) - 1)
    head_rows: list[int] = []
    hook = lm.model.get_output_embeddings().register_forward_hook(lambda m, i, o: head_rows.append(i[0].shape[0]))
    with torch.no_grad():
        logp = token_logprobs(lm.model, batch)
    hook.remove()
    assert sum(head_rows) == batch.pred_index.unique().numel() < batch.pred_index.numel()
    for i, r in enumerate(rows):
        mine, kinds = batch.target_row == i, batch.target_kind[batch.target_row == i]
        ids_g = r.prefix + r.good
        p = len(r.prefix)
        want_g = plain_token_logprobs(lm, ids_g)
        torch.testing.assert_close(logp[mine][kinds == PREFIX], torch.tensor(want_g[: p - 1]), atol=1e-4, rtol=0)
        torch.testing.assert_close(logp[mine][kinds == GOOD], torch.tensor(want_g[p - 1 :]), atol=1e-4, rtol=0)
        if r.bad:
            want_b = plain_token_logprobs(lm, r.prefix + r.bad)
            torch.testing.assert_close(logp[mine][kinds == BAD], torch.tensor(want_b[p - 1 :]), atol=1e-4, rtol=0)
    # pack() fills lanes no wider than the longest row: here fewer lanes than rows
    dense = pack(rows, lm.device, lm.dtype)
    assert dense.input_ids.shape[1] == max(n_inputs(r) for r in rows) and dense.input_ids.shape[0] < len(rows)
