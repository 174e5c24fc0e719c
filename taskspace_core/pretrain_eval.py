"""BLiMP accuracy of a model while it trains: the per-checkpoint scores in ``suite.json``.

A checkpoint's model is scored in memory with :class:`PairScorer` (the scorer the app uses, so
the numbers match a later ``precompute eval`` of the saved checkpoint): a pair counts as right
when the good sentence's summed log-probability beats the bad one's. Accuracies are kept per
paradigm and averaged per category (BLiMP's ``linguistics_term``); the issue's targets also
read the two *regular* subject-verb paradigms on their own (:data:`REGULAR_SVA`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from taskspace_core.tasks import Task

if TYPE_CHECKING:  # torch only where a model is scored: the app reads curves without it
    import torch

# The paradigms the learning curves follow: BLiMP's determiner-noun and subject-verb agreement.
DETERMINER_NOUN = (
    "determiner_noun_agreement_1", "determiner_noun_agreement_2",
    "determiner_noun_agreement_irregular_1", "determiner_noun_agreement_irregular_2",
    "determiner_noun_agreement_with_adjective_1", "determiner_noun_agreement_with_adj_2",
    "determiner_noun_agreement_with_adj_irregular_1", "determiner_noun_agreement_with_adj_irregular_2",
)  # fmt: skip
REGULAR_SVA = ("regular_plural_subject_verb_agreement_1", "regular_plural_subject_verb_agreement_2")
SUBJECT_VERB = (
    *REGULAR_SVA, "irregular_plural_subject_verb_agreement_1", "irregular_plural_subject_verb_agreement_2",
    "distractor_agreement_relational_noun", "distractor_agreement_relative_clause",
)  # fmt: skip
EVAL_PARADIGMS = (*DETERMINER_NOUN, *SUBJECT_VERB)
REGULAR_SVA_GROUP = "regular_subject_verb_agreement"
# The built-in paradigms that mirror them, for a machine without BLiMP.
BUILTIN_EVAL = ("demonstrative_noun_number", "demonstrative_number_det", "demonstrative_adjective_noun",
                "sva_verb_changes", "sva_noun_changes", "sva_attractor_of_phrase")  # fmt: skip


def eval_tasks(blimp: str | Path | None, names: Sequence[str] = EVAL_PARADIGMS, pairs: int = 200) -> list[Task]:
    """The first ``pairs`` pairs of each paradigm: from a BLiMP folder, else the built-in mirrors."""
    if blimp is not None:
        from taskspace_core.tasks import load_blimp_dir

        have = {p.stem for p in Path(blimp).glob("*.jsonl")}
        return list(load_blimp_dir(blimp, [n for n in names if n in have]).limited(pairs).tasks)
    from taskspace_core.builtin import load_builtin

    return list(load_builtin(list(BUILTIN_EVAL), n_pairs=pairs).tasks)


def summarise(tasks: Sequence[Task], accuracy: Sequence[float]) -> dict[str, dict[str, float]]:
    """Per-paradigm accuracies, their mean per category, and the regular subject-verb group."""
    paradigms = {t.name: round(float(a), 4) for t, a in zip(tasks, accuracy, strict=True)}
    groups: dict[str, list[float]] = {}
    for t, a in zip(tasks, accuracy, strict=True):
        groups.setdefault(t.category or t.name, []).append(float(a))
        if t.name in REGULAR_SVA:
            groups.setdefault(REGULAR_SVA_GROUP, []).append(float(a))
    categories = {k: round(float(np.mean(v)), 4) for k, v in groups.items()}
    return {"categories": categories, "paradigms": paradigms}


class CheckpointEvaluator:
    """Scores an in-memory model on fixed tasks; an ``evaluate`` hook for :func:`pretrain`."""

    def __init__(self, tasks: Sequence[Task]) -> None:
        if not tasks:
            raise ValueError("no evaluation tasks")
        self.tasks = list(tasks)

    def __call__(self, model: torch.nn.Module, tokenizer: Any) -> dict[str, dict[str, float]]:
        import torch

        from taskspace_core.models import LoadedModel, ModelSpec
        from taskspace_core.scoring import PairScorer, task_metrics

        device = next(model.parameters()).device
        model.eval()
        loaded = LoadedModel(model, tokenizer, ModelSpec("in-training"), "in-training", device, torch.float32)
        scorer = PairScorer(loaded)
        # the same accuracy as everywhere else: a tie counts as half a correct pair
        acc = [task_metrics(scorer.score_pairs(t.pairs).margins)["accuracy"] for t in self.tasks]
        return summarise(self.tasks, acc)


def curve_frame(suite: dict) -> pd.DataFrame:
    """suite.json's curves as a long table: size, step, tokens, metric, value (loss, then accuracies)."""
    rows = []
    for size, curve in suite.get("curves", {}).items():
        for c in curve:
            base = {"size": size, "step": c["step"], "tokens": c["tokens_seen"]}
            rows.append({**base, "metric": "held-out loss", "value": c["heldout_loss"]})
            for cat, acc in c.get("blimp", {}).get("categories", {}).items():
                rows.append({**base, "metric": cat, "value": acc})
    return pd.DataFrame(rows, columns=["size", "step", "tokens", "metric", "value"])


def find_suites(root: Path, depth: int = 3) -> list[Path]:
    """suite.json files at most ``depth`` folders below ``root`` (the cache holds much else: no rglob)."""
    found: list[Path] = []
    for d in range(depth + 1):
        found.extend(sorted(Path(root).glob("/".join(["*"] * d + ["suite.json"]))))
    return found
