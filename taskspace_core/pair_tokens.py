"""Per-token log-probs of minimal pairs aligned at the divergence: records and tables (no torch).

A pair's tokens are ``prefix | good suffix`` and ``prefix | bad suffix``: the shared prefix
(identical for both sentences, scored once) and the two suffixes from the first differing
token on. Tables put that token at ``position`` 0, the prefix at negative positions, so the
good and the bad sentence line up where they differ. The compute side is
:mod:`taskspace_core.token_scores`; this module only reads and lays out what it produced,
so the app can use it without importing torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class PairTokens:
    """One pair's tokens (as text) and their log-probs in nats; the BOS is not a scored token."""

    good: str
    bad: str
    prefix_tokens: tuple[str, ...]
    prefix_logp: np.ndarray
    good_tokens: tuple[str, ...]
    good_logp: np.ndarray
    bad_tokens: tuple[str, ...]
    bad_logp: np.ndarray

    def margin(self, reduction: str = "sum") -> float:
        """log p(good) - log p(bad) as the scorer defines it (``mean``: per-token mean log-prob)."""
        if reduction == "sum":
            return float(self.good_logp.sum() - self.bad_logp.sum())  # the prefix cancels
        shared = float(self.prefix_logp.sum())
        n_good, n_bad = len(self.prefix_logp) + len(self.good_logp), len(self.prefix_logp) + len(self.bad_logp)
        return (shared + float(self.good_logp.sum())) / n_good - (shared + float(self.bad_logp.sum())) / n_bad

    def to_record(self) -> dict[str, Any]:
        """A plain tree the results store can hold."""
        return {
            "good": self.good,
            "bad": self.bad,
            "prefix_tokens": list(self.prefix_tokens),
            "prefix_logp": np.asarray(self.prefix_logp, dtype=np.float64),
            "good_tokens": list(self.good_tokens),
            "good_logp": np.asarray(self.good_logp, dtype=np.float64),
            "bad_tokens": list(self.bad_tokens),
            "bad_logp": np.asarray(self.bad_logp, dtype=np.float64),
        }

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> PairTokens:
        arr = {k: np.asarray(rec[k], dtype=np.float64) for k in ("prefix_logp", "good_logp", "bad_logp")}
        tok = {k: tuple(str(t) for t in rec[k]) for k in ("prefix_tokens", "good_tokens", "bad_tokens")}
        return cls(good=str(rec["good"]), bad=str(rec["bad"]), **tok, **arr)


def margins(pairs: Sequence[PairTokens], reduction: str = "sum") -> np.ndarray:
    return np.array([p.margin(reduction) for p in pairs], dtype=np.float64)


def _order(before: Sequence[PairTokens], reduction: str) -> list[int]:
    """Pair indices by margin, lowest (most wrong) first; ties keep the pairs' order."""
    return [int(i) for i in np.argsort(margins(before, reduction), kind="stable")]


def pair_frame(
    before: Sequence[PairTokens], after: Sequence[PairTokens] | None = None, reduction: str = "sum"
) -> pd.DataFrame:
    """One row per pair, sorted by margin: sentences, margin (and after tuning), first differing tokens."""
    rows = []
    for rank, i in enumerate(_order(before, reduction), start=1):
        p = before[i]
        row = {
            "rank": rank,
            "pair": i,
            "sentence_good": p.good,
            "sentence_bad": p.bad,
            "margin": p.margin(reduction),
            "diverges_at": len(p.prefix_tokens),
            "first_good": p.good_tokens[0] if p.good_tokens else "",
            "first_bad": p.bad_tokens[0] if p.bad_tokens else "",
        }
        if after is not None:
            row["margin_after"] = after[i].margin(reduction)
            row["change"] = row["margin_after"] - row["margin"]
        rows.append(row)
    return pd.DataFrame(rows)


def _aligned(p: PairTokens, q: PairTokens | None) -> list[dict[str, Any]]:
    """Rows of one pair: prefix at positions -n..-1 (same token for both), suffixes from 0."""
    out = []
    n = len(p.prefix_tokens)
    for k, tok in enumerate(p.prefix_tokens):
        row = {"position": k - n, "differs": False, "token_good": tok, "logp_good": p.prefix_logp[k]}
        row.update(token_bad=tok, logp_bad=p.prefix_logp[k])
        if q is not None:
            row.update(logp_good_after=q.prefix_logp[k], logp_bad_after=q.prefix_logp[k])
        out.append(row)
    for k in range(max(len(p.good_tokens), len(p.bad_tokens))):
        row = {"position": k, "differs": True}
        for side, toks, lp in (("good", p.good_tokens, p.good_logp), ("bad", p.bad_tokens, p.bad_logp)):
            row[f"token_{side}"] = toks[k] if k < len(toks) else ""
            row[f"logp_{side}"] = lp[k] if k < len(toks) else np.nan
            if q is not None:
                q_lp = q.good_logp if side == "good" else q.bad_logp
                row[f"logp_{side}_after"] = q_lp[k] if k < len(toks) else np.nan
        out.append(row)
    return out


def token_frame(
    before: Sequence[PairTokens], after: Sequence[PairTokens] | None = None, reduction: str = "sum"
) -> pd.DataFrame:
    """One row per aligned token position of every pair, pairs sorted by margin (lowest first).

    Columns: rank, pair, margin (and margin_after), the two sentences, position (0 = first
    differing token), differs, token_good/bad, logp_good/bad (and their ``_after`` values).
    """
    if after is not None and len(after) != len(before):
        raise ValueError(f"{len(before)} pairs before tuning but {len(after)} after")
    rows = []
    for rank, i in enumerate(_order(before, reduction), start=1):
        p, q = before[i], (after[i] if after is not None else None)
        head = {"rank": rank, "pair": i, "margin": p.margin(reduction)}
        if q is not None:
            head["margin_after"] = q.margin(reduction)
        head.update(sentence_good=p.good, sentence_bad=p.bad)
        rows.extend({**head, **r} for r in _aligned(p, q))
    return pd.DataFrame(rows)


def load_result(value: Mapping[str, Any]) -> tuple[list[PairTokens], list[PairTokens] | None]:
    """The before / after pair lists of a cached ``pairs`` entry (see ``precompute pairs``)."""
    before = [PairTokens.from_record(r) for r in value["before"]]
    after = value.get("after")
    return before, ([PairTokens.from_record(r) for r in after] if after is not None else None)
