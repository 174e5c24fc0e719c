"""Model shape, learning-rate schedule, optimiser and held-out loss."""

from __future__ import annotations

import math

import torch

from taskspace_core.pretrain.config import EOS, LR_REF_WIDTH, MIN_POSITIONS, PretrainConfig, SizeSpec
from taskspace_core.pretrain.data import TokenData


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
