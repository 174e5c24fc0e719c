"""Low impact (METHODS s3): LM loss on general text, and the conventional fine-tuning baseline."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from taskspace_core.ftgd.config import FTGDError
from taskspace_core.ftgd.params import check_pairs, grads_on
from taskspace_core.ftgd.tuning import ADAM_BETAS, ADAM_EPS, tune_batches
from taskspace_core.models import LoadedModel
from taskspace_core.packing import Row, encode, pack, token_logprobs
from taskspace_core.scoring import PairScorer, ScoringConfig
from taskspace_core.tasks import MinimalPair


def _lm_loss_tensor(loaded: LoadedModel, texts: Sequence[str]) -> torch.Tensor:
    """Differentiable mean NLL per token of sentences (BOS prepended), one packed forward."""
    ids = encode(loaded.tokenizer, loaded.bos_id, texts)
    batch = pack([Row(tuple(x)) for x in ids], loaded.device, loaded.dtype, with_prefix=True)
    return -token_logprobs(loaded.model, batch).mean()


def lm_loss(loaded: LoadedModel, texts: Sequence[str]) -> float:
    """Mean NLL per token (nats) of ``texts`` under the model as it is now."""
    if not texts:
        raise FTGDError("lm_loss needs at least one text")
    logp, n_tok = PairScorer(loaded, ScoringConfig()).sentence_logprobs(texts)
    return float(-logp.sum() / n_tok.sum())


@contextlib.contextmanager
def conventional_finetune(
    loaded: LoadedModel,
    pairs: Sequence[MinimalPair],
    steps: int = 20,
    lr: float = 1e-4,
    batch_size: int = 8,
    grad_clip: float = 1.0,
    seed: int = 0,
) -> Iterator[dict[str, list[float]]]:
    """Baseline of METHODS s3: Adam on the LM loss of the good sentences, all parameters.

    A context manager: inside, the model is tuned (yields ``{"loss": [...]}``); on exit every
    parameter is restored bit for bit. Same batching, clip and eval mode (no dropout) as FTGD.
    """
    check_pairs(pairs, "tune")
    params = list(loaded.model.parameters())  # tied tensors once
    backup = [p.detach().clone() for p in params]
    curve: list[float] = []
    try:
        with grads_on(params):
            opt = torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS)
            batches = tune_batches(len(pairs), batch_size, seed)
            for _ in range(steps):
                texts = [pairs[i].good for i in next(batches)]
                opt.zero_grad(set_to_none=True)
                loss = _lm_loss_tensor(loaded, texts)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
                opt.step()
                curve.append(float(loss.detach()))
            del opt
        yield {"loss": curve}
    finally:
        with torch.no_grad():
            for p, b in zip(params, backup, strict=True):
                p.data.copy_(b)
