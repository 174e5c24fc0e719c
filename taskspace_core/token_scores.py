"""Per-token scores of minimal pairs from the prefix-shared engine (METHODS.md s2).

The same packed rows as the margins (:func:`taskspace_core.scoring.pair_token_rows`): each
pair's shared prefix is computed once, then the good and the bad suffix. So the per-token
log-probs here sum to exactly the margins :class:`~taskspace_core.scoring.PairScorer` reports,
and equal scoring each sentence on its own (tested to 1e-4).
"""

from __future__ import annotations

from collections.abc import Sequence

from taskspace_core.models import LoadedModel
from taskspace_core.pair_tokens import PairTokens
from taskspace_core.scoring import PairScorer, Progress, ScoringConfig, pair_token_rows
from taskspace_core.tasks import MinimalPair


def token_texts(tokenizer, ids: Sequence[int]) -> tuple[str, ...]:
    """Each token id as the text it stands for (a leading space shows as a space)."""
    return tuple(tokenizer.decode([int(i)]) for i in ids)


def pair_tokens(
    loaded: LoadedModel,
    pairs: Sequence[MinimalPair],
    config: ScoringConfig | None = None,
    progress: Progress | None = None,
) -> list[PairTokens]:
    """Per-token log-probs of each pair, split at the divergence, in the order given."""
    scorer = PairScorer(loaded, config)
    rows, per_tok = pair_token_rows(scorer, pairs, progress)
    out = []
    tok = loaded.tokenizer
    for pair, row, lp in zip(pairs, rows, per_tok, strict=True):
        n_prefix, n_good = len(row.prefix) - 1, len(row.good)
        out.append(
            PairTokens(
                good=pair.good,
                bad=pair.bad,
                prefix_tokens=token_texts(tok, row.prefix[1:]),  # the BOS predicts, it is not scored
                prefix_logp=lp[:n_prefix],
                good_tokens=token_texts(tok, row.good),
                good_logp=lp[n_prefix : n_prefix + n_good],
                bad_tokens=token_texts(tok, row.bad),
                bad_logp=lp[n_prefix + n_good :],
            )
        )
    return out
