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

from taskspace_core.pretrain.checkpoints import (
    read_suite,
)
from taskspace_core.pretrain.config import (
    EOS,
    LR_REF_WIDTH,
    MIN_POSITIONS,
    SIZES,
    SUITE_FILE,
    SUITE_VERSION,
    Evaluate,
    Log,
    PretrainConfig,
    PretrainError,
    SizeSpec,
    log_spaced,
    parse_checkpoints,
    parse_sizes,
)
from taskspace_core.pretrain.data import (
    TokenData,
    encode,
    load_tokenizer,
    prepare_data,
    split_documents,
    train_tokenizer,
)
from taskspace_core.pretrain.optim import build_config, count_parameters, heldout_loss, lr_at, make_optimizer, peak_lr
from taskspace_core.pretrain.training import pretrain, print_curves, size_label, suite_config, train_size

__all__ = [
    "EOS",
    "Evaluate",
    "LR_REF_WIDTH",
    "Log",
    "MIN_POSITIONS",
    "PretrainConfig",
    "PretrainError",
    "SIZES",
    "SUITE_FILE",
    "SUITE_VERSION",
    "SizeSpec",
    "TokenData",
    "build_config",
    "count_parameters",
    "encode",
    "heldout_loss",
    "load_tokenizer",
    "log_spaced",
    "lr_at",
    "make_optimizer",
    "parse_checkpoints",
    "parse_sizes",
    "peak_lr",
    "prepare_data",
    "pretrain",
    "print_curves",
    "read_suite",
    "size_label",
    "split_documents",
    "suite_config",
    "train_size",
    "train_tokenizer",
]
