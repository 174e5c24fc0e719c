"""Training each size with progress, checkpoints and resumption; the suite config it writes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from taskspace_core.pretrain.checkpoints import (
    _atomic_torch_save,
    _config_hash,
    _fmt_time,
    _rng_state,
    _save_checkpoint,
    _set_rng_state,
    _update_suite,
    read_suite,
)
from taskspace_core.pretrain.config import Evaluate, Log, PretrainConfig, PretrainError, SizeSpec
from taskspace_core.pretrain.data import TokenData, prepare_data
from taskspace_core.pretrain.optim import build_config, count_parameters, heldout_loss, lr_at, make_optimizer, peak_lr


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
    size_info["threads"] = torch.get_num_threads() if torch.device(device).type == "cpu" else 0
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
    workers: int = 1,
    threads: int = 1,
    deterministic: bool = False,
) -> dict:
    """Train every size on ``corpus`` into ``out`` (resuming what is there); returns suite.json's content.

    ``workers`` > 1 trains sizes side by side in that many processes of ``threads`` torch threads
    (:mod:`taskspace_core.pretrain.parallel`); ``on_checkpoint`` then cannot be called (other processes).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer, data, meta = prepare_data(Path(corpus), cfg, out, log)
    log(f"checkpoints at steps {cfg.checkpoint_steps()}")
    if workers > 1 and len(sizes) > 1:
        if on_checkpoint is not None:
            raise ValueError("on_checkpoint needs workers=1: sizes trained in other processes cannot call it")
        from taskspace_core.pretrain.parallel import train_parallel

        n = min(workers, len(sizes))
        train_parallel(Path(corpus), sizes, cfg, out, n, threads, str(device), evaluate, deterministic, log)
    else:
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
