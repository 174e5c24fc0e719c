"""Packed rows leave out each sentence's last token and still give every target's plain log-prob."""

from __future__ import annotations

import torch

from taskspace_core.packing import BAD, GOOD, PREFIX, Row, encode, n_inputs, pack, pair_row, token_logprobs
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
