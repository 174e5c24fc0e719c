"""Integration: the offline default model on real BLiMP paradigms."""

from __future__ import annotations

import numpy as np
import pytest

from taskspace_core.scoring import PairScorer, ScoringConfig
from taskspace_core.tasks import load_blimp_dir

pytestmark = pytest.mark.slow
PARADIGMS = ["anaphor_gender_agreement", "determiner_noun_agreement_1", "npi_present_1"]


def test_accuracy_matches_minicons_on_the_same_model(smollm2, blimp_dir):
    from minicons import scorer as mscorer

    ts = load_blimp_dir(blimp_dir, PARADIGMS)
    ours = PairScorer(smollm2, ScoringConfig())
    theirs = mscorer.IncrementalLMScorer(smollm2.model, device="cpu", tokenizer=smollm2.tokenizer)
    for task in ts:
        pairs = task.pairs[:200]
        m = ours.score_pairs(pairs).margins
        goods, bads = [], []
        for s in range(0, len(pairs), 50):
            chunk = pairs[s : s + 50]
            goods += theirs.sequence_score([p.good for p in chunk], reduction=lambda x: x.sum(0).item(), bos_token=True)
            bads += theirs.sequence_score([p.bad for p in chunk], reduction=lambda x: x.sum(0).item(), bos_token=True)
        ref = np.array(goods) - np.array(bads)
        assert abs((m > 0).mean() - (ref > 0).mean()) <= 0.02, task.name
        assert np.abs(m - ref).max() < 1e-3, task.name


def test_offline_default_scores_agreement_well(smollm2, blimp_dir):
    ts = load_blimp_dir(blimp_dir, ["regular_plural_subject_verb_agreement_1", "anaphor_number_agreement"])
    acc = [(PairScorer(smollm2).score_pairs(t.pairs[:100]).margins > 0).mean() for t in ts]
    assert min(acc) > 0.7, acc  # the GGUF conversion kept a working model (about 0.8 on agreement)
