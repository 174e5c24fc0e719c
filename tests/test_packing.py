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


def test_plan_lanes_best_fit_longest_first():
    # 10 opens a full lane; 6 opens one with room 4, which 4 fills; 3 opens a third, 1 joins it
    assert plan_lanes([10, 6, 4, 3, 1], min_width=10) == [[0], [1, 2], [3, 4]]
    # a row longer than the width opens a lane of its own length; short rows still fill to the width
    lanes = plan_lanes([3, 25, 7, 2, 8, 5, 5], min_width=8)
    assert sorted(i for lane in lanes for i in lane) == list(range(7))
    assert [1] in lanes and all(sum([3, 25, 7, 2, 8, 5, 5][i] for i in lane) <= 8 for lane in lanes if 1 not in lane)


def test_rows_sharing_a_lane_score_as_if_alone_and_the_head_reads_each_position_once():
    lm = tiny_loaded_model("gpt_neox", seed=9)
    good = encode(lm.tokenizer, lm.bos_id, [g for g, _ in SENTENCES])
    bad = encode(lm.tokenizer, lm.bos_id, [b for _, b in SENTENCES])
    rows = [pair_row(g, b) for g, b in zip(good, bad, strict=True)] + [Row(tuple(good[0]))]
    batch = pack_lanes(rows, [[0, 1, 4], [3, 2]], lm.device, lm.dtype, with_prefix=True)
    assert batch.input_ids.shape == (2, n_inputs(rows[0]) + n_inputs(rows[1]) + n_inputs(rows[4]))
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
