"""Pretrain a small suite of GPT-2-style causal LMs from scratch (sizes x checkpoints).

The suite lets the size and checkpoint views run on real, if small, models with no hub
and no GPU. One byte-level BPE tokenizer is trained on the corpus and shared by all
sizes; each size trains on the same token stream with the same seed, and is saved at
log-spaced steps (step 0 = the initialisation) as ordinary ``save_pretrained``
directories that ``taskspace_core.models.load_model`` opens like any model.

Layout under ``out``::

    tokenizer/            the shared tokenizer (also copied into every checkpoint)
    tokens.pt             the encoded train / held-out token streams
    <size>/step<N>/       model + tokenizer, loadable with load_model(ModelSpec(path))
    <size>/resume.pt      optimiser, RNG states and data position of the last checkpoint
    suite.json            sizes, checkpoints (size, step, path, tokens seen, held-out loss), curves

Training is deterministic given the seed: the batch of step s is a function of s alone
(a seeded permutation of the blocks per epoch), so resuming from a checkpoint continues
exactly where an uninterrupted run would be. No dropout, so no RNG is used while
training; the RNG states are saved all the same, for whoever adds some.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from taskspace_core.corpus import corpus_digest, read_documents

EOS = "<|endoftext|>"
SUITE_FILE = "suite.json"
SUITE_VERSION = 1
LR_REF_WIDTH = 128
# Positions a model can score: at least this many, whatever the training context (a 64-token
# context must still score a long sentence; the positions beyond it stay untrained).
MIN_POSITIONS = 256
Log = Callable[[str], None]
# Scores a model at a checkpoint: (model, tokenizer) -> {"categories": {...}, "paradigms": {...}}.
Evaluate = Callable[[torch.nn.Module, Any], dict]


class PretrainError(ValueError):
    """A pretraining request that cannot run; the message says what to change."""


@dataclass(frozen=True)
class SizeSpec:
    """A GPT-2 shape. Non-embedding parameters are about 12 * n_layer * n_embd^2."""

    name: str
    n_layer: int
    n_embd: int
    n_head: int


# About 0.4M, 1.8M and 6.3M non-embedding parameters: a 16x span (see docs/PRETRAIN.md).
SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec("tiny", n_layer=2, n_embd=128, n_head=4),
    "small": SizeSpec("small", n_layer=4, n_embd=192, n_head=4),
    "base": SizeSpec("base", n_layer=8, n_embd=256, n_head=8),
}


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines the weights of the suite (``checkpoints`` only says when to save)."""

    steps: int = 160
    batch_size: int = 8
    context: int = 128
    lr: float = 3e-3  # peak lr at width LR_REF_WIDTH; wider models get lr * LR_REF_WIDTH / n_embd
    min_lr_ratio: float = 0.1
    warmup_steps: int = 40  # at most a quarter of the steps (see lr_at)
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    vocab_size: int = 8192
    seed: int = 0
    heldout_fraction: float = 0.02
    heldout_tokens: int = 4096
    bf16: bool = False  # bf16 autocast for the training forward pass (weights and optimiser stay fp32)
    checkpoints: tuple[int, ...] = field(default=(), compare=False)  # () -> log_spaced(steps)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise PretrainError(f"steps must be at least 1, not {self.steps}")
        if self.batch_size < 1 or self.context < 8:
            raise PretrainError("batch_size must be >= 1 and context >= 8")
        if not 0.0 < self.heldout_fraction < 0.5:
            raise PretrainError(f"heldout_fraction must be in (0, 0.5), not {self.heldout_fraction}")
        if self.vocab_size < 300:
            raise PretrainError(f"vocab_size {self.vocab_size} is below the 256 bytes + merges a BPE needs")
        bad = [c for c in self.checkpoints if not 0 <= c <= self.steps]
        if bad:
            raise PretrainError(f"checkpoint steps {bad} lie outside 0..{self.steps}")

    def checkpoint_steps(self) -> list[int]:
        """The steps to save at: always 0 and the last step."""
        steps = set(self.checkpoints) if self.checkpoints else set(log_spaced(self.steps))
        return sorted(steps | {0, self.steps})

    def training_key(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("checkpoints")
        if not d["bf16"]:  # suites trained before the switch existed keep their config hash
            d.pop("bf16")
        return d

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.context


def log_spaced(steps: int, n: int = 7) -> list[int]:
    """Step 0 and ``n - 1`` steps halving back from ``steps`` (n=7, 240 steps: 0, 8, 15, 30, 60, 120, 240)."""
    points = {0, steps}
    points.update(round(steps / 2**k) for k in range(n - 1))
    return sorted(p for p in points if 0 <= p <= steps)


def parse_checkpoints(text: str, steps: int) -> tuple[int, ...]:
    """``0,10,100,1000`` or ``log:8`` (8 log-spaced steps) or ``""`` (the default log-spaced set)."""
    text = text.strip()
    if not text:
        return ()
    if text.startswith("log:"):
        return tuple(log_spaced(steps, int(text[4:])))
    try:
        return tuple(sorted({int(s) for s in text.split(",") if s.strip()}))
    except ValueError as e:
        raise PretrainError(f"--checkpoints '{text}': give steps like 0,10,100 or log:8") from e


def parse_sizes(text: str) -> list[SizeSpec]:
    """``tiny,small,base``; a custom shape may be given as ``name=LAYERSxEMBDxHEADS`` (e.g. ``wide=2x384x6``)."""
    out: list[SizeSpec] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, eq, shape = part.partition("=")
        if eq:
            try:
                n_layer, n_embd, n_head = (int(x) for x in shape.lower().split("x"))
            except ValueError as e:
                raise PretrainError(f"size '{part}': write a custom shape as name=LAYERSxEMBDxHEADS") from e
            if n_embd % n_head:
                raise PretrainError(f"size '{part}': n_embd {n_embd} is not divisible by {n_head} heads")
            out.append(SizeSpec(name, n_layer, n_embd, n_head))
        elif name in SIZES:
            out.append(SIZES[name])
        else:
            raise PretrainError(f"size '{name}' is not one of {', '.join(SIZES)} (or name=LAYERSxEMBDxHEADS)")
    if not out:
        raise PretrainError("no size given; e.g. --sizes tiny,small,base")
    return out


# ---------------------------------------------------------------- tokenizer and data


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


def build_config(size: SizeSpec, tokenizer, context: int):
    from transformers import GPT2Config

    eos = tokenizer.convert_tokens_to_ids(EOS)
    return GPT2Config(
        vocab_size=len(tokenizer), n_positions=max(context, MIN_POSITIONS), n_embd=size.n_embd, n_layer=size.n_layer,
        n_head=size.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=eos, eos_token_id=eos, tie_word_embeddings=True,
    )  # fmt: skip


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Total and non-embedding parameters (token and position embeddings excluded; the LM head is tied)."""
    total = sum(p.numel() for p in model.parameters())
    emb = sum(p.numel() for n, p in model.named_parameters() if n.endswith(("wte.weight", "wpe.weight")))
    return {"total_params": total, "non_embedding_params": total - emb}


def peak_lr(cfg: PretrainConfig, size: SizeSpec) -> float:
    """``cfg.lr`` scaled by 1/width (as muP does for Adam on hidden matrices).

    Why: at one lr for all, the 8-layer, 256-wide base diverged briefly at 3e-3 (held-out loss
    rose after warm-up) and ended behind the smaller sizes; 1/width keeps each size stable.
    """
    return cfg.lr * min(1.0, LR_REF_WIDTH / size.n_embd)


def lr_at(step: int, cfg: PretrainConfig, peak: float | None = None) -> float:
    """Linear warm-up (``warmup_steps``, at most a quarter of all), then cosine decay to ``min_lr_ratio * peak``.

    Why so long a warm-up: with 16 warm-up steps of 160, small and base spiked right after it
    (small's held-out loss went from 8.1 to 12.4 at step 20 before recovering); with 40 the
    curves are smooth and reach the same loss by step 40.
    """
    peak = cfg.lr if peak is None else peak
    warm = min(cfg.warmup_steps, max(1, cfg.steps // 4))
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, cfg.steps - warm)
    return peak * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def make_optimizer(model: torch.nn.Module, cfg: PretrainConfig) -> torch.optim.Optimizer:
    # No weight decay on biases and LayerNorm gains: the usual GPT recipe.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8)


@torch.no_grad()
def heldout_loss(model: torch.nn.Module, data: TokenData, batch_size: int = 16) -> float:
    """Mean next-token NLL (nats) over the held-out blocks."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(data.heldout_blocks), batch_size):
        x = data.heldout_blocks[i : i + batch_size].to(device)
        logits = model(input_ids=x).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="sum"
        )
        total += float(nll)
        count += x[:, 1:].numel()
    model.train(was_training)
    return total / count


def _rng_state() -> dict[str, Any]:
    """Every RNG's state in types ``torch.load(weights_only=True)`` reads (no NumPy arrays)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = (str(name), [int(k) for k in keys], int(pos), int(has_gauss), float(cached))
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": numpy_state}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _config_hash(cfg: PretrainConfig, size: SizeSpec, data_meta: dict) -> str:
    key = {"config": cfg.training_key(), "size": asdict(size), "corpus": data_meta["corpus_digest"]}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _save_checkpoint(model, tokenizer, path: Path, info: dict) -> None:
    """save_pretrained + tokenizer into a fresh directory, then rename: a kill never leaves half a checkpoint."""
    from transformers.utils import logging as hf_logging

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "writing shards" bar per checkpoint drowns the training log
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "pretrain.json").write_text(json.dumps(info, indent=1))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if bar:
            hf_logging.enable_progress_bar()


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def read_suite(out: Path) -> dict:
    p = Path(out) / SUITE_FILE
    return json.loads(p.read_text()) if p.exists() else {}


def _update_suite(out: Path, size: SizeSpec, size_info: dict, record: dict | None, curve: list[dict],
                  head: dict) -> None:  # fmt: skip
    suite = read_suite(out) or {"version": SUITE_VERSION, "sizes": {}, "checkpoints": [], "curves": {}}
    suite.update(head)
    suite["sizes"][size.name] = size_info
    if record is not None:
        rows = [c for c in suite["checkpoints"] if not (c["size"] == size.name and c["step"] == record["step"])]
        suite["checkpoints"] = sorted([*rows, record], key=lambda c: (c["non_embedding_params"], c["step"]))
    suite["curves"][size.name] = curve
    tmp = out / f".{SUITE_FILE}.tmp"
    tmp.write_text(json.dumps(suite, indent=1))
    os.replace(tmp, out / SUITE_FILE)


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def train_size(
    size: SizeSpec,
    tokenizer,
    data: TokenData,
    data_meta: dict,
    cfg: PretrainConfig,
    out: Path,
    log: Log = print,
    on_checkpoint: Callable[[str, int], None] | None = None,
    log_every: float = 10.0,
    device: str | torch.device = "cpu",
    evaluate: Evaluate | None = None,
) -> dict:
    """Train one size to ``cfg.steps``, resuming from its last checkpoint; returns its suite entry."""
    from transformers import GPT2LMHeadModel

    size_dir = out / size.name
    resume_file = size_dir / "resume.pt"
    chash = _config_hash(cfg, size, data_meta)
    ckpts = cfg.checkpoint_steps()
    head = {"corpus": data_meta, "config": cfg.training_key(), "tokenizer": "tokenizer", "arch": "gpt2"}
    curve: list[dict] = []
    start = 0
    if resume_file.exists():
        state = torch.load(resume_file, weights_only=True)  # tensors and plain types only: never code
        if state["config_hash"] != chash:
            raise PretrainError(
                f"{size_dir} was trained with other settings ({state['config']}); "
                "use another --out, or delete that directory to start this size over"
            )
        start, curve, ema = state["step"], state["curve"], state.get("loss_ema")
        model = GPT2LMHeadModel.from_pretrained(size_dir / f"step{start}", dtype=torch.float32).to(device)
        optimizer = make_optimizer(model, cfg)
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        if start >= cfg.steps:
            log(f"{size.name}: done already (step {start}); skipping")
            return read_suite(out).get("sizes", {}).get(size.name, {})
        log(f"{size.name}: resuming from step {start} ({state['tokens_seen']:,} tokens seen)")
    else:
        torch.manual_seed(cfg.seed)
        model = GPT2LMHeadModel(build_config(size, tokenizer, cfg.context)).to(device)
        optimizer = make_optimizer(model, cfg)
        ema = None
    params = count_parameters(model)
    lr_peak = peak_lr(cfg, size)
    size_info = {**asdict(size), **params, "context": cfg.context, "vocab_size": len(tokenizer), "peak_lr": lr_peak}
    log(
        f"{size.name}: {size.n_layer} layers x {size.n_embd} wide, {params['non_embedding_params'] / 1e6:.2f}M "
        f"non-embedding / {params['total_params'] / 1e6:.2f}M parameters; {cfg.steps} steps x "
        f"{cfg.tokens_per_step} tokens ({cfg.steps * cfg.tokens_per_step / data.epoch_tokens:.2f} epochs), "
        f"peak lr {lr_peak:.2g}"
    )

    def checkpoint(step: int, train_loss: float | None) -> None:
        loss = heldout_loss(model, data)
        tokens = step * cfg.tokens_per_step
        point = {"step": step, "tokens_seen": tokens, "heldout_loss": round(loss, 4),
                 "train_loss": None if train_loss is None else round(train_loss, 4)}  # fmt: skip
        if evaluate is not None:  # scoring runs no RNG and leaves the weights as they are
            point["blimp"] = evaluate(model, tokenizer)
            model.train()
        curve[:] = [c for c in curve if c["step"] < step] + [point]
        path = size_dir / f"step{step}"
        record = {"size": size.name, "step": step, "path": str(path.relative_to(out)), "tokens_seen": tokens,
                  "heldout_loss": round(loss, 4), "non_embedding_params": params["non_embedding_params"]}  # fmt: skip
        if "blimp" in point:
            record["blimp"] = point["blimp"]
        _save_checkpoint(model, tokenizer, path, {**record, "config_hash": chash})
        _atomic_torch_save(
            {"step": step, "tokens_seen": tokens, "optimizer": optimizer.state_dict(), "rng": _rng_state(),
             "curve": curve, "config_hash": chash, "config": cfg.training_key(), "loss_ema": train_loss},
            resume_file,
        )  # fmt: skip
        _update_suite(out, size, size_info, record, curve, head)
        accs = "  ".join(f"{k} {v:.3f}" for k, v in point.get("blimp", {}).get("categories", {}).items())
        log(f"{size.name}: checkpoint step {step:>6d}  tokens {tokens:>10,}  held-out loss {loss:.3f}  {accs}")
        if on_checkpoint is not None:
            on_checkpoint(size.name, step)

    if start == 0 and not resume_file.exists():
        checkpoint(0, None)
    model.train()
    t0 = last_log = time.perf_counter()
    ckpt_secs = 0.0  # held-out loss and saving are not training: tokens/s leaves them out
    for step in range(start, cfg.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg, lr_peak)
        x = data.batch(step, cfg.batch_size, cfg.seed).to(device)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = model(input_ids=x, labels=x).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        value = float(loss.detach())
        ema = value if ema is None else 0.9 * ema + 0.1 * value
        done = step + 1
        now = time.perf_counter()
        if now - last_log >= log_every or done == cfg.steps:
            rate = (done - start) * cfg.tokens_per_step / (now - t0 - ckpt_secs)
            eta = (cfg.steps - done) * cfg.tokens_per_step / rate
            log(f"{size.name}: step {done:>6d}/{cfg.steps}  loss {ema:.3f}  lr {lr_at(step, cfg, lr_peak):.2e}  "
                f"{rate:,.0f} tokens/s  ETA {_fmt_time(eta)}")  # fmt: skip
            last_log = now
        if done in ckpts:
            checkpoint(done, ema)
            ckpt_secs += time.perf_counter() - now
    elapsed = time.perf_counter() - t0 - ckpt_secs
    size_info["tokens_per_second"] = round((cfg.steps - start) * cfg.tokens_per_step / max(elapsed, 1e-9), 1)
    size_info["train_seconds"] = round(elapsed, 1)
    size_info["checkpoint_seconds"] = round(ckpt_secs, 1)
    _update_suite(out, size, size_info, None, curve, head)
    return size_info


def pretrain(
    corpus: Path,
    sizes: Sequence[SizeSpec],
    cfg: PretrainConfig,
    out: Path,
    log: Log = print,
    on_checkpoint: Callable[[str, int], None] | None = None,
    device: str | torch.device = "cpu",
    evaluate: Evaluate | None = None,
) -> dict:
    """Train every size on ``corpus`` into ``out`` (resuming what is there); returns suite.json's content."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer, data, meta = prepare_data(Path(corpus), cfg, out, log)
    log(f"checkpoints at steps {cfg.checkpoint_steps()}")
    for size in sizes:
        train_size(size, tokenizer, data, meta, cfg, out, log, on_checkpoint, device=device, evaluate=evaluate)
    print_curves(read_suite(out), log)
    return read_suite(out)


def print_curves(suite: dict, log: Log = print) -> None:
    """The held-out loss curve of every size: one row per checkpoint step, one column per size."""
    curves = suite.get("curves", {})
    if not curves:
        return
    steps = sorted({c["step"] for curve in curves.values() for c in curve})
    names = list(curves)
    log("\nheld-out loss (nats/token) by step:")
    log(f"{'step':>8} {'tokens':>11} " + " ".join(f"{n:>8}" for n in names))
    for s in steps:
        vals = {n: next((c for c in curves[n] if c["step"] == s), None) for n in names}
        tokens = next((v["tokens_seen"] for v in vals.values() if v), 0)
        log(
            f"{s:>8} {tokens:>11,} "
            + " ".join(f"{v['heldout_loss']:>8.3f}" if v else f"{'':>8}" for v in vals.values())
        )


def size_label(non_embedding_params: int) -> str:
    """``397k``, ``1.8M``: a label the app sorts by its number (it reads a leading count + k/M/B)."""
    n = non_embedding_params
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def suite_config(
    suite: dict, out: Path, tasks: Sequence[str], name: str = "mini_suite", series: str = "mini-suite",
    root: Path | None = None,
) -> dict:  # fmt: skip
    """A run config (precompute/config.py schema) with every checkpoint of every size as a model.

    Sizes are labelled by non-embedding parameters (the paper's size axis), so the app orders
    them by size; the size name stays visible in each model's path.
    """
    root = Path.cwd() if root is None else root
    base = Path(out).resolve()
    try:
        shown = base.relative_to(root.resolve())
    except ValueError:
        shown = base
    models = [
        {"name": str(shown / c["path"]), "size": size_label(c["non_embedding_params"]), "step": int(c["step"])}
        for c in sorted(suite["checkpoints"], key=lambda c: (c["non_embedding_params"], c["step"]))
    ]
    return {"name": name, "series": series, "models": models, "tasks": list(tasks), "methods": ["transfer", "gradient"]}
