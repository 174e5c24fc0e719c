"""Named pretraining budgets: ``learns`` (a 2-core CPU, <= 90 min) and ``gpu`` (the paper's sizes).

``learns`` is chosen for what makes small models learn fast per CPU second (docs/PRETRAIN.md):
Brown + nlp-corpus (2.7M words) packed into 64-token blocks (sentence-level syntax fits, and
attention is cheap), a 4,096-token BPE trained on that corpus (a small softmax: at 4.7M
non-embedding parameters an 8k head would be 31% of every step), linear warm-up then
cosine decay, bf16 autocast only where the CPU computes bf16 natively (:func:`cpu_bf16_is_fast`), and three
sizes spanning 21x in non-embedding parameters. ``gpu`` shapes GPT-2 models like the paper's
(about 27M, 70M, 203M parameters); its time is estimated from FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from taskspace_core.pretrain import MIN_POSITIONS, PretrainConfig, SizeSpec, log_spaced, parse_sizes

# An H100/H200's dense bf16 peak is about 990 TFLOP/s; 35% of it is a usual sustained rate
# for GPT-2-shaped models of this size (METHODS.md's cost notes use the same rule of thumb).
GPU_FLOPS = 0.35 * 990e12
# Effective training rate of a quiet 2-core AVX-512 CPU (fp32, one size per core, one thread
# each), from the clean run in docs/PRETRAIN.md: tokens/s x FLOPs/token per core was l-base
# 2,373 x 35.8M = 85 GFLOP/s, l-small 65, l-tiny 59 (small matrices use a core less well).
CPU_FLOPS = 150e9


@dataclass(frozen=True)
class Preset:
    """Sizes, training config, corpus and threads of a named budget."""

    name: str
    sizes: tuple[SizeSpec, ...]
    config: PretrainConfig
    corpus: str = "brown+nlp-corpus"
    threads: int = 2
    device: str = "cpu"
    flops_per_second: float = CPU_FLOPS
    evaluate: bool = True
    about: str = ""
    workers: int = 1  # processes training sizes side by side; 0: one per available core


def cpu_bf16_is_fast(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX-BF16). Without it bf16 autocast
    is emulated and slower than fp32: measured on an AVX-512 Xeon without BF16, 1 thread, batch 32 x 64,
    a 4 x 160 step took 2.9 s in bf16 and 0.59 s in fp32, 6 x 256 4.1 s and 2.3 s (docs/PRETRAIN.md);
    with AVX512-BF16 bf16 was 1.25-1.4x faster."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set(cpuinfo.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def _config(steps: int, n_checkpoints: int, bf16: bool, **kw) -> PretrainConfig:
    return PretrainConfig(steps=steps, checkpoints=tuple(log_spaced(steps, n_checkpoints)), bf16=bf16, **kw)


LEARNS = Preset(
    "learns",
    tuple(parse_sizes("l-tiny=2x96x4,l-small=4x160x4,l-base=6x256x8")),
    _config(
        3072,
        10,
        cpu_bf16_is_fast(),
        batch_size=32,
        context=64,
        lr=3e-3,
        warmup_steps=100,
        vocab_size=4096,
        heldout_tokens=8192,
    ),  # fmt: skip
    about="three sizes (0.22M-4.7M non-embedding) on Brown + nlp-corpus, 6.3M tokens each, side by side on the cores",
    workers=0,
)
GPU = Preset(
    "gpu",
    tuple(parse_sizes("g-27m=6x512x8,g-70m=12x640x10,g-203m=15x1024x16")),
    _config(
        20000,
        12,
        True,
        batch_size=64,
        context=256,
        lr=1.5e-3,
        warmup_steps=1000,
        vocab_size=16384,
        heldout_tokens=65536,
    ),  # fmt: skip
    threads=0,
    device="cuda",
    flops_per_second=GPU_FLOPS,
    about="the paper's sizes (27M, 70M, 203M parameters), 328M tokens each: give a larger --corpus",
)

PRESETS: dict[str, Preset] = {p.name: p for p in (LEARNS, GPU)}


def parameter_estimate(size: SizeSpec, vocab: int, context: int) -> dict[str, int]:
    """GPT-2 parameter counts without building the model (matches count_parameters exactly)."""
    d, n = size.n_embd, size.n_layer
    per_layer = 12 * d * d + 13 * d  # qkv + proj + 4x MLP weights and biases, two LayerNorms
    non_emb = n * per_layer + 2 * d  # + the final LayerNorm
    return {"non_embedding_params": non_emb, "total_params": non_emb + vocab * d + max(context, MIN_POSITIONS) * d}


def train_flops_per_token(size: SizeSpec, vocab: int, context: int) -> float:
    """Forward + backward FLOPs per token: 6 x (matrix parameters incl. the tied head) + attention."""
    d, n = size.n_embd, size.n_layer
    matrices = 12 * n * d * d + vocab * d
    attention = 2 * n * context * d  # QK^T and AV, causal: half of 2 * 2 * context * d
    return 6.0 * matrices + 6.0 * attention


def plan(preset: Preset, flops_per_second: float | None = None) -> list[dict]:
    """Per size: parameters, tokens, training FLOPs and the estimated seconds at the preset's rate."""
    cfg = preset.config
    rate = flops_per_second or preset.flops_per_second
    tokens = cfg.steps * cfg.tokens_per_step
    rows = []
    for s in preset.sizes:
        flops = train_flops_per_token(s, cfg.vocab_size, cfg.context) * tokens
        rows.append({"size": s.name, "shape": f"{s.n_layer}x{s.n_embd}x{s.n_head}",
                     **parameter_estimate(s, cfg.vocab_size, cfg.context), "tokens": tokens,
                     "train_flops": flops, "est_seconds": flops / rate})  # fmt: skip
    return rows


def makespan(seconds: list[float], workers: int) -> float:
    """Wall time of jobs (seconds at the full rate) run longest first on ``workers`` processes that
    share the rate equally while all are busy (a simple bound: a lone last job gets no speed-up)."""
    if workers <= 1:
        return sum(seconds)
    ends = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        i = ends.index(min(ends))
        ends[i] += s * workers
    return max(ends)


def format_plan(preset: Preset, flops_per_second: float | None = None, workers: int = 1) -> str:
    """The table ``--dry-run`` prints (``workers``: sizes trained side by side)."""
    rate = flops_per_second or preset.flops_per_second
    rows = plan(preset, rate)
    cfg = preset.config
    lines = [
        f"preset '{preset.name}': {preset.about}",
        f"  {cfg.steps} steps x {cfg.batch_size} x {cfg.context} tokens, vocab {cfg.vocab_size}, bf16 {cfg.bf16}, "
        f"warm-up {cfg.warmup_steps} then cosine to {cfg.min_lr_ratio:g} x peak; checkpoints {cfg.checkpoint_steps()}",
        f"  {'size':<8} {'shape':>10} {'non-emb':>9} {'total':>9} {'tokens':>12} {'PFLOP':>8} {'est. time':>10}",
    ]
    for r in rows:
        lines.append(
            f"  {r['size']:<8} {r['shape']:>10} {r['non_embedding_params'] / 1e6:>8.2f}M"
            f" {r['total_params'] / 1e6:>8.1f}M {r['tokens']:>12,} {r['train_flops'] / 1e15:>8.2f}"
            f" {r['est_seconds'] / 60:>8.1f} m"
        )
    total = sum(r["est_seconds"] for r in rows)
    lines.append(f"  total {total / 60:.1f} min at {rate / 1e12:.3g} TFLOP/s effective ({preset.device})")
    if workers > 1:
        wall = makespan([r["est_seconds"] for r in rows], workers)
        lines.append(f"  wall about {wall / 60:.1f} min with {workers} sizes side by side, longest first")
    return "\n".join(lines)


def planned_suite(preset: Preset) -> dict:
    """suite.json's ``checkpoints`` as the preset will write them (paths, steps, sizes), before training.

    ``configs/mini_suite_learns.yaml`` is written from this, so it exists before anyone has
    spent the 90 minutes; ``write_config`` reads only these fields.
    """
    cfg = preset.config
    rows = []
    for s in preset.sizes:
        params = parameter_estimate(s, cfg.vocab_size, cfg.context)["non_embedding_params"]
        for step in cfg.checkpoint_steps():
            rows.append({"size": s.name, "step": step, "path": f"{s.name}/step{step}", "non_embedding_params": params})
    return {"checkpoints": rows}
