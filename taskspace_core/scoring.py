"""Scoring minimal pairs: sentence log-probs, margins, accuracy and ties (METHODS.md s2).

``PairScorer`` batches rows by length, picks the batch size from free memory, halves it
on out-of-memory, packs short rows into shared lanes, and by default computes each pair's
shared prefix once (:mod:`taskspace_core.packing`); the result equals the plain computation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import psutil
import torch

from taskspace_core.configs import ScoringConfig
from taskspace_core.models import LoadedModel
from taskspace_core.packing import (
    BAD,
    GOOD,
    PREFIX,
    Row,
    encode,
    pack,
    pack_lanes,
    pair_row,
    plan_lanes,
    row_sums,
    token_logprobs,
)
from taskspace_core.tasks import MinimalPair

TIE_EPS = 1e-6
LANE_WIDTH = 96  # positions; short rows share lanes this wide (attention over 96 is cheap next to the MLP)
__all__ = ["PairScorer", "PairScores", "ScoringConfig", "margins_with_grad", "task_metrics"]
Progress = Callable[[int], None]


@dataclass(frozen=True)
class PairScores:
    """Per-pair results, in the order the pairs were given. Log-probs in nats."""

    margins: np.ndarray
    logp_good: np.ndarray
    logp_bad: np.ndarray
    n_tokens_good: np.ndarray
    n_tokens_bad: np.ndarray
    token_logprobs_good: tuple[np.ndarray, ...] | None = None
    token_logprobs_bad: tuple[np.ndarray, ...] | None = None


def task_metrics(margins: np.ndarray) -> dict[str, float]:
    """accuracy (a tie, |margin| < TIE_EPS, counts as half a correct pair: the forced-choice
    convention), mean margin, n, and the number of ties."""
    m = np.asarray(margins, dtype=np.float64)
    ties = np.abs(m) < TIE_EPS
    return {
        "accuracy": float(np.mean(np.where(ties, 0.5, m > 0))) if m.size else float("nan"),
        "mean_margin": float(m.mean()) if m.size else float("nan"),
        "n": int(m.size),
        "ties": int(ties.sum()),
    }


def default_batch_tokens(device: torch.device, model: torch.nn.Module) -> int:
    """A token budget per forward pass from free memory (activations + chunked LM head)."""
    cfg = model.config
    hidden = int(getattr(cfg, "hidden_size", 768))
    inter = int(getattr(cfg, "intermediate_size", 4 * hidden) or 4 * hidden)
    per_token = 4 * (6 * hidden + 2 * inter)  # bytes of live activations per token, generous
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(max(512, min(131072, 0.5 * free / per_token)))
    free = psutil.virtual_memory().available
    # On CPU, larger batches stop paying off past a few thousand tokens (measured).
    return int(max(256, min(2048, 0.25 * free / per_token)))


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


def _halve(lanes: list[list[int]]) -> list[list[list[int]]]:
    """A batch's rows in two halves, keeping lanes (one cut at the middle row becomes two)."""
    half, seen = sum(map(len, lanes)) // 2, 0
    first: list[list[int]] = []
    second: list[list[int]] = []
    for lane in lanes:
        a, b = lane[: max(0, half - seen)], lane[max(0, half - seen) :]
        seen += len(lane)
        first += [a] if a else []
        second += [b] if b else []
    return [first, second]


class PairScorer:
    """Scores minimal pairs with one loaded model."""

    def __init__(self, loaded: LoadedModel, config: ScoringConfig | None = None) -> None:
        self.loaded = loaded
        self.config = config or ScoringConfig()
        self.batch_tokens = self.config.max_batch_tokens or default_batch_tokens(loaded.device, loaded.model)

    def _batches(self, rows: Sequence[Row], budget: int) -> list[list[list[int]]]:
        """Batches of lanes of row indices: lanes planned over all rows, then grouped by width
        so that a batch's lanes x width stays within the token budget."""
        lanes, width = plan_lanes(rows, min(LANE_WIDTH, budget))
        batches: list[list[list[int]]] = []
        cur: list[list[int]] = []
        for k in sorted(range(len(lanes)), key=lambda k: width[k]):  # widths only grow: the last sets the batch's
            if cur and (len(cur) + 1) * width[k] > budget:
                batches.append(cur)
                cur = []
            cur.append(lanes[k])
        if cur:
            batches.append(cur)
        return batches

    def _run_rows(
        self, rows: Sequence[Row], with_prefix: bool, keep_tokens: bool, progress: Progress | None
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """[n_rows, 3] sums per (row, kind) and optionally the prefix token log-probs of each row."""
        sums = np.zeros((len(rows), 3))
        per_token: list[np.ndarray] | None = [np.zeros(0)] * len(rows) if keep_tokens else None
        pending = self._batches(rows, self.batch_tokens)
        lm = self.loaded
        while pending:
            lanes = pending.pop(0)
            idx = [i for lane in lanes for i in lane]
            try:
                with torch.inference_mode():
                    batch = pack_lanes(rows, lanes, lm.device, lm.dtype, with_prefix)
                    logp = token_logprobs(lm.model, batch)
                    s = row_sums(batch, logp).double().cpu().numpy()
            except (RuntimeError, torch.OutOfMemoryError) as e:
                if not _is_oom(e) or len(idx) == 1:
                    raise
                if lm.device.type == "cuda":
                    torch.cuda.empty_cache()
                self.batch_tokens = max(1, self.batch_tokens // 2)  # remember the smaller budget
                pending[:0] = _halve(lanes)  # and retry
                continue
            sums[idx] = s[idx]
            if per_token is not None:
                lp = logp.double().cpu().numpy()
                rows_of = batch.target_row.cpu().numpy()
                for i in idx:
                    per_token[i] = lp[rows_of == i]
            if progress:
                progress(len(idx))
        return sums, per_token

    def score_pairs(
        self,
        pairs: Sequence[MinimalPair],
        token_scores: bool = False,
        progress: Progress | None = None,
    ) -> PairScores:
        """Score pairs; ``progress(n)`` is called with the number of rows finished per batch."""
        lm = self.loaded
        good = encode(lm.tokenizer, lm.bos_id, [p.good for p in pairs])
        bad = encode(lm.tokenizer, lm.bos_id, [p.bad for p in pairs])
        n_good = np.array([len(x) - 1 for x in good], dtype=np.int64)
        n_bad = np.array([len(x) - 1 for x in bad], dtype=np.int64)
        need_full = self.config.reduction == "mean"
        tok_good = tok_bad = None
        if self.config.share_prefix and not token_scores:
            rows = [pair_row(g, b) for g, b in zip(good, bad, strict=True)]
            sums, _ = self._run_rows(rows, with_prefix=need_full, keep_tokens=False, progress=progress)
            lp_good = sums[:, PREFIX] + sums[:, GOOD]
            lp_bad = sums[:, PREFIX] + sums[:, BAD]
            if not need_full:  # prefix not scored: its log-prob cancels in the margin only
                lp_good = lp_bad = np.full(len(pairs), np.nan)
            raw = sums[:, GOOD] - sums[:, BAD]
        else:
            rows = [Row(tuple(x)) for x in (*good, *bad)]
            sums, per_tok = self._run_rows(rows, with_prefix=True, keep_tokens=token_scores, progress=progress)
            lp_good, lp_bad = sums[: len(pairs), PREFIX], sums[len(pairs) :, PREFIX]
            raw = lp_good - lp_bad
            if per_tok is not None:
                tok_good, tok_bad = tuple(per_tok[: len(pairs)]), tuple(per_tok[len(pairs) :])
        margins = lp_good / n_good - lp_bad / n_bad if need_full else raw
        return PairScores(margins, lp_good, lp_bad, n_good, n_bad, tok_good, tok_bad)

    def sentence_logprobs(
        self, texts: Sequence[str], progress: Progress | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(sum log-prob, number of scored tokens) per sentence; for LM-loss measurements."""
        lm = self.loaded
        ids = encode(lm.tokenizer, lm.bos_id, texts)
        sums, _ = self._run_rows([Row(tuple(x)) for x in ids], with_prefix=True, keep_tokens=False, progress=progress)
        return sums[:, PREFIX], np.array([len(x) - 1 for x in ids], dtype=np.int64)


def margins_with_grad(loaded: LoadedModel, pairs: Sequence[MinimalPair]) -> torch.Tensor:
    """Differentiable margins (sum reduction) of a small batch of pairs, in one packed forward pass."""
    good = encode(loaded.tokenizer, loaded.bos_id, [p.good for p in pairs])
    bad = encode(loaded.tokenizer, loaded.bos_id, [p.bad for p in pairs])
    batch = pack([pair_row(g, b) for g, b in zip(good, bad, strict=True)], loaded.device, loaded.dtype, False)
    sums = row_sums(batch, token_logprobs(loaded.model, batch))
    return sums[:, GOOD] - sums[:, BAD]


def pair_token_rows(
    scorer: PairScorer, pairs: Sequence[MinimalPair], progress: Progress | None = None
) -> tuple[list[Row], list[np.ndarray]]:
    """Each pair split at its divergence and its per-token log-probs from the prefix-shared engine.

    Row ``i`` holds the token ids ``prefix | good suffix | bad suffix``; its log-prob array is laid
    out the same way, with the prefix scored once (its first token, the BOS, predicts and is not
    scored). Same packed forward passes, batching and OOM handling as :meth:`PairScorer.score_pairs`.
    """
    lm = scorer.loaded
    good = encode(lm.tokenizer, lm.bos_id, [p.good for p in pairs])
    bad = encode(lm.tokenizer, lm.bos_id, [p.bad for p in pairs])
    rows = [pair_row(g, b) for g, b in zip(good, bad, strict=True)]
    _, per_tok = scorer._run_rows(rows, with_prefix=True, keep_tokens=True, progress=progress)
    assert per_tok is not None
    return rows, per_tok
