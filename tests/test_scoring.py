"""Scoring equals a plain, unbatched reference; metrics and ties; minicons agreement on SmolLM2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taskspace_core.scoring import PairScorer, ScoringConfig, margins_with_grad, task_metrics
from taskspace_core.tasks import MinimalPair
from tests.tiny_models import tiny_loaded_model

PAIRS = [
    MinimalPair("The cat sleeps.", "The cat sleep."),
    MinimalPair("The dogs run here today.", "The dogs runs here today."),
    MinimalPair("Every man likes himself.", "Every man likes herself."),
    MinimalPair("A big red dog saw the old cats yesterday.", "A big red dog saw the old cat yesterday."),
    MinimalPair("Who likes cats?", "Who like cats?"),
    MinimalPair("The woman is happy.", "The women is happy."),  # differs at the second token
    MinimalPair("Dogs run.", "Dogs run quickly."),  # good is a prefix of bad
    MinimalPair("These girls see themselves in the new teacher.", "These girls sees themselves in a new teacher."),
]


def reference_logprob(lm, text: str) -> tuple[float, list[float]]:
    """Plain computation: one sentence, BOS prepended, no batching, no padding, no packing."""
    ids = [lm.bos_id, *lm.tokenizer(text, add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    toks = [float(logp[t - 1, ids[t]]) for t in range(1, len(ids))]
    return sum(toks), toks


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "llama"])
@pytest.mark.parametrize("share_prefix", [True, False])
@pytest.mark.parametrize("batch_tokens", [16, 4096])
def test_scores_equal_unbatched_reference(arch, share_prefix, batch_tokens):
    lm = tiny_loaded_model(arch, seed=1)
    # a small token budget forces several batches of mixed lengths, so rows are padded
    res = PairScorer(lm, ScoringConfig(share_prefix=share_prefix, max_batch_tokens=batch_tokens)).score_pairs(PAIRS)
    ref_good = np.array([reference_logprob(lm, p.good)[0] for p in PAIRS])
    ref_bad = np.array([reference_logprob(lm, p.bad)[0] for p in PAIRS])
    np.testing.assert_allclose(res.margins, ref_good - ref_bad, atol=1e-4, rtol=0)
    if not share_prefix:
        np.testing.assert_allclose(res.logp_good, ref_good, atol=1e-4, rtol=0)
        np.testing.assert_allclose(res.logp_bad, ref_bad, atol=1e-4, rtol=0)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_mean_reduction_and_token_scores_match_reference(arch):
    lm = tiny_loaded_model(arch, seed=2)
    for share in (True, False):
        res = PairScorer(lm, ScoringConfig(reduction="mean", share_prefix=share)).score_pairs(PAIRS)
        expect = []
        for p in PAIRS:
            (g, gt), (b, bt) = reference_logprob(lm, p.good), reference_logprob(lm, p.bad)
            expect.append(g / len(gt) - b / len(bt))
        np.testing.assert_allclose(res.margins, expect, atol=1e-4, rtol=0)
    res = PairScorer(lm, ScoringConfig(share_prefix=False)).score_pairs(PAIRS, token_scores=True)
    for p, toks in zip(PAIRS, res.token_logprobs_good, strict=True):
        np.testing.assert_allclose(toks, reference_logprob(lm, p.good)[1], atol=1e-4, rtol=0)


def test_bf16_model_uses_float32_log_softmax():
    lm = tiny_loaded_model("llama", seed=3)
    lm.model.to(torch.bfloat16)
    lm.dtype = torch.bfloat16
    res = PairScorer(lm, ScoringConfig()).score_pairs(PAIRS)
    assert res.margins.dtype == np.float64 and np.isfinite(res.margins).all()
    # bf16 weights change the numbers a little, not the sign structure of a random model's margins much
    lm32 = tiny_loaded_model("llama", seed=3)
    ref = PairScorer(lm32, ScoringConfig()).score_pairs(PAIRS).margins
    # bf16 weights move margins by < 0.01 nats here; a bf16 log-softmax moves them by ~0.5
    assert np.abs(res.margins - ref).max() < 0.05


def test_differentiable_margins_equal_scorer():
    lm = tiny_loaded_model("gpt_neox", seed=4)
    m = margins_with_grad(lm, PAIRS).detach().numpy()
    np.testing.assert_allclose(m, PairScorer(lm).score_pairs(PAIRS).margins, atol=1e-4)


def test_oom_halves_batch_and_retries(monkeypatch):
    import taskspace_core.scoring as scoring

    lm = tiny_loaded_model("gpt2", seed=5)
    real = scoring.token_logprobs
    calls, done = [], []

    def flaky(model, batch, **kw):
        rows = len(set(batch.target_row.tolist()))  # every pair here has targets
        calls.append(rows)
        if rows > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
        done.append(rows)
        return real(model, batch, **kw)

    monkeypatch.setattr(scoring, "token_logprobs", flaky)
    scorer = PairScorer(lm, ScoringConfig(max_batch_tokens=4096))
    res = scorer.score_pairs(PAIRS)
    monkeypatch.setattr(scoring, "token_logprobs", real)
    np.testing.assert_allclose(res.margins, PairScorer(lm).score_pairs(PAIRS).margins, rtol=0, atol=1e-5)
    assert calls[:3] == [8, 4, 2] and sum(done) == len(PAIRS) and scorer.batch_tokens < 4096


def test_task_metrics_counts_ties_apart():
    # two correct, one wrong, two ties (|margin| < 1e-6): a tie is half a correct pair, (2 + 2 / 2) / 5
    m = task_metrics(np.array([1.0, -2.0, 0.0, 3e-7, 0.5]))
    assert m == {"accuracy": 0.6, "mean_margin": pytest.approx(-0.1 + 6e-8), "n": 5, "ties": 2}
    assert task_metrics(np.zeros(4))["accuracy"] == 0.5  # all ties: chance, not 0
    edge = task_metrics(np.array([2e-6, -2e-6, 9e-7, -9e-7]))  # just outside / inside the tie band
    assert edge["accuracy"] == (1 + 0 + 0.5 + 0.5) / 4 and edge["ties"] == 2
