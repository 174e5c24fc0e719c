"""Per-token scores from the prefix-shared engine equal a plain per-sentence computation and sum to the margins."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taskspace_core.pair_tokens import PairTokens, margins, pair_frame, token_frame
from taskspace_core.scoring import PairScorer, ScoringConfig
from taskspace_core.tasks import MinimalPair
from taskspace_core.token_scores import pair_tokens
from tests.tiny_models import tiny_loaded_model

PAIRS = [
    MinimalPair("The cat sleeps.", "The cat sleep."),
    MinimalPair("Every man likes himself.", "Every man likes herself."),
    MinimalPair("A big red dog saw the old cats yesterday.", "A big red dog saw the old cat yesterday."),
    MinimalPair("The woman is happy.", "The women is happy."),
    MinimalPair("Dogs run.", "Dogs run quickly."),  # good is a prefix of bad: its suffix is empty
    MinimalPair("Cats sleep.", "Dogs sleep."),  # differs at the first word: only the BOS is shared
    MinimalPair("These girls see themselves in the new teacher.", "These girls sees themselves in a new teacher."),
]


def plain_token_logprobs(lm, text: str) -> tuple[list[int], np.ndarray]:
    """One sentence alone: BOS prepended, one row, no padding, no packing, full model forward."""
    ids = [lm.bos_id, *lm.tokenizer(text, add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0].float(), -1)
    return ids, np.array([float(logp[t - 1, ids[t]]) for t in range(1, len(ids))])


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "llama"])
@pytest.mark.parametrize("batch_tokens", [24, 4096])
def test_token_scores_equal_plain_computation_and_sum_to_margins(arch, batch_tokens, one_torch_thread):
    lm = tiny_loaded_model(arch, seed=3)
    cfg = ScoringConfig(max_batch_tokens=batch_tokens)  # 24 tokens: several padded batches of mixed lengths
    got = pair_tokens(lm, PAIRS, cfg)
    assert len(got) == len(PAIRS)
    for p, t in zip(PAIRS, got, strict=True):
        sides = ((p.good, t.good_tokens, t.good_logp), (p.bad, t.bad_tokens, t.bad_logp))
        for text, suffix_tokens, suffix_logp in sides:
            ids, ref = plain_token_logprobs(lm, text)
            np.testing.assert_allclose(np.concatenate([t.prefix_logp, suffix_logp]), ref, atol=1e-4, rtol=0)
            assert t.prefix_tokens + suffix_tokens == tuple(lm.tokenizer.decode([i]) for i in ids[1:])
        if t.good_tokens and t.bad_tokens:
            assert t.good_tokens[0] != t.bad_tokens[0]  # aligned exactly at the first differing token
    for reduction in ("sum", "mean"):
        engine = PairScorer(lm, ScoringConfig(reduction=reduction, max_batch_tokens=batch_tokens)).score_pairs(PAIRS)
        # equal up to float32 rounding (the margins-only pass runs the LM head on fewer positions)
        np.testing.assert_allclose(margins(got, reduction), engine.margins, atol=1e-4, rtol=0)


def _pt(good: str, bad: str, prefix: list[float], g: list[float], b: list[float]) -> PairTokens:
    return PairTokens(
        good,
        bad,
        tuple(f"p{i}" for i in range(len(prefix))),
        np.array(prefix),
        tuple(f"g{i}" for i in range(len(g))),
        np.array(g),
        tuple(f"b{i}" for i in range(len(b))),
        np.array(b),
    )


def test_frames_sort_by_margin_and_align_at_the_divergence():
    a = _pt("a good", "a bad", [-1.0, -2.0], [-0.5], [-3.0, -1.0])  # margin +3.5
    b = _pt("b good", "b bad", [-1.0], [-4.0], [-1.0])  # margin -3
    after = [_pt("a good", "a bad", [-1.0, -2.0], [-0.5], [-1.0, -1.0]), _pt("b good", "b bad", [-1.0], [-1.0], [-2.0])]
    pf = pair_frame([a, b], after)
    assert list(pf["pair"]) == [1, 0] and list(pf["margin"]) == [-3.0, 3.5]
    assert list(pf["margin_after"]) == [1.0, 1.5] and list(pf["change"]) == [4.0, -2.0]
    tf = token_frame([a, b], after)
    first = tf[tf["pair"] == 1]
    assert list(first["position"]) == [-1, 0] and list(first["differs"]) == [False, True]
    second = tf[tf["pair"] == 0]
    assert list(second["position"]) == [-2, -1, 0, 1]
    assert list(second["token_good"]) == ["p0", "p1", "g0", ""]
    assert list(second["token_bad"]) == ["p0", "p1", "b0", "b1"]
    assert np.isnan(second["logp_good"].iloc[3]) and second["logp_bad_after"].iloc[2] == -1.0
    assert list(tf["rank"]) == [1, 1, 2, 2, 2, 2]
    # the mean reduction divides by each sentence's own token count, prefix included
    assert a.margin("mean") == pytest.approx((-3.5 / 3) - (-7.0 / 4))


def test_surprisal_figure_marks_the_differing_tokens_and_escapes_them():
    from taskspace_core.plots import surprisal_figure

    p = _pt("g", "b", [-1.0], [-2.0, -0.5], [-3.0, -0.5])
    p = PairTokens(p.good, p.bad, ("<b>",), p.prefix_logp, ("dogs", " here"), p.good_logp, ("dog", " here"), p.bad_logp)
    fig = surprisal_figure(token_frame([p]))
    assert len(fig.data) == 2  # good and bad; no after-tuning curves without them
    good = fig.data[0]
    assert list(good.y) == [1.0, 2.0, 0.5]  # surprisal = -log p
    assert list(good.marker.size) == [6, 12, 6]  # enlarged only where the two tokens differ
    assert list(fig.layout.xaxis.ticktext) == ["&lt;b&gt;", "dogs / dog", "here"]
    assert len(surprisal_figure(token_frame([p], [p])).data) == 4
