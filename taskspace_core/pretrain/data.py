"""The corpus as training data: tokenizer, document split, token streams and the seeded batches."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from taskspace_core.corpus import corpus_digest, read_documents
from taskspace_core.pretrain.config import EOS, Log, PretrainConfig, PretrainError


def train_tokenizer(documents: Sequence[str], vocab_size: int, out: Path):
    """A byte-level BPE tokenizer trained on the documents, saved to ``out``; EOS doubles as BOS."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    # BPE training is deterministic for a given input (ties broken by the pair's bytes).
    bpe.train_from_iterator(
        list(documents), vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS], show_progress=False
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token=EOS, eos_token=EOS, unk_token=EOS, model_max_length=1 << 30
    )
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(out)
    return tok


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def split_documents(documents: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Held-out documents chosen by a seeded shuffle (at least one); a single document is split by text."""
    docs = list(documents)
    if len(docs) == 1:  # no document boundaries: hold out the end of the text
        cut = int(len(docs[0]) * (1 - fraction))
        return [docs[0][:cut]], [docs[0][cut:]]
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    n_held = max(1, round(len(docs) * fraction))
    held = set(order[:n_held])
    return [d for i, d in enumerate(docs) if i not in held], [d for i, d in enumerate(docs) if i in held]


def encode(tokenizer, documents: Sequence[str]) -> torch.Tensor:
    """One token stream: each document followed by EOS (so EOS-as-BOS starts every document)."""
    eos = tokenizer.convert_tokens_to_ids(EOS)
    ids: list[int] = [eos]
    for enc in tokenizer(list(documents), add_special_tokens=False)["input_ids"]:
        ids.extend(enc)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


@dataclass
class TokenData:
    """Train stream cut into blocks of ``context`` tokens, and held-out blocks for the loss curve."""

    train_blocks: torch.Tensor  # (n_blocks, context)
    heldout_blocks: torch.Tensor
    context: int

    @classmethod
    def from_streams(cls, train: torch.Tensor, heldout: torch.Tensor, context: int, heldout_tokens: int) -> TokenData:
        n = len(train) // context
        if n < 1:
            raise PretrainError(f"the corpus has {len(train)} training tokens, fewer than one context of {context}")
        m = max(1, min(len(heldout) // context, max(1, heldout_tokens // context)))
        if len(heldout) < context:  # tiny held-out text: pad by repeating it (a test corpus, not a real one)
            heldout = heldout.repeat(context // max(1, len(heldout)) + 1)
        return cls(train[: n * context].view(n, context), heldout[: m * context].view(m, context), context)

    def batch(self, step: int, batch_size: int, seed: int) -> torch.Tensor:
        """The batch of ``step``: a function of the step alone, so a resumed run sees the same data."""
        n = len(self.train_blocks)
        rows = []
        for i in range(step * batch_size, (step + 1) * batch_size):
            epoch, pos = divmod(i, n)
            rows.append(int(_epoch_order(n, seed, epoch)[pos]))
        return self.train_blocks[rows]

    @property
    def epoch_tokens(self) -> int:
        return self.train_blocks.numel()


_ORDER_CACHE: dict[tuple[int, int, int], torch.Tensor] = {}


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    key = (n, seed, epoch)
    if key not in _ORDER_CACHE:
        if len(_ORDER_CACHE) > 4:
            _ORDER_CACHE.clear()
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        _ORDER_CACHE[key] = torch.randperm(n, generator=g)
    return _ORDER_CACHE[key]


def prepare_data(corpus: Path, cfg: PretrainConfig, out: Path, log: Log = print) -> tuple[Any, TokenData, dict]:
    """Tokenizer + token streams for ``corpus``, built once per output directory and reused on resume."""
    digest = corpus_digest(corpus)
    meta = {"corpus": str(corpus), "corpus_digest": digest, "vocab_size": cfg.vocab_size, "seed": cfg.seed,
            "heldout_fraction": cfg.heldout_fraction}  # fmt: skip
    tok_dir, data_file = out / "tokenizer", out / "tokens.pt"
    if data_file.exists() and (tok_dir / "tokenizer.json").exists():
        saved = torch.load(data_file, weights_only=True)
        if saved["meta"]["corpus_digest"] != digest or any(saved["meta"][k] != meta[k] for k in meta if k != "corpus"):
            raise PretrainError(
                f"{out} was built from another corpus or tokenizer setting ({saved['meta']}); "
                "use another --out, or delete it to start over"
            )
        tok = load_tokenizer(tok_dir)
        train, held = saved["train"], saved["heldout"]
    else:
        t0 = time.perf_counter()
        docs = read_documents(corpus)
        train_docs, held_docs = split_documents(docs, cfg.heldout_fraction, cfg.seed)
        tok = train_tokenizer(train_docs, cfg.vocab_size, tok_dir)
        train, held = encode(tok, train_docs), encode(tok, held_docs)
        tmp = data_file.with_suffix(".tmp")
        torch.save({"meta": meta, "train": train, "heldout": held}, tmp)
        os.replace(tmp, data_file)
        log(
            f"tokenizer: {len(tok)} tokens (byte-level BPE); corpus {corpus.name}: {len(docs)} documents, "
            f"{len(train):,} train / {len(held):,} held-out tokens ({time.perf_counter() - t0:.1f} s)"
        )
    meta["train_tokens"], meta["heldout_tokens"] = len(train), len(held)
    return tok, TokenData.from_streams(train, held, cfg.context, cfg.heldout_tokens), meta


# ---------------------------------------------------------------- model and training
