"""Settings of a suite: sizes, the frozen config, checkpoint steps; constants shared by the package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

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
