"""FTGD: fine-tuning via gradient differentials (METHODS.md s3).

For a minimal pair, ``L_diff = -margin = nll(good) - nll(bad)``; its gradient is the pair's
*gradient differential*. FTGD averages it over ``mask_pairs`` tune pairs (``g_task``), keeps
the top ``mask_fraction`` of ``|g_task|`` entries as a mask, and tunes only those entries
with a few Adam steps. The result (:class:`FTGDResult`) is a sparse update, compact enough
to cache, plus the mask, the tune curve, the mask's layout over layers and modules, and a
count-sketch of ``g_task`` from which gradient cosines (G, METHODS s5) are estimated.

The rooms: :mod:`.config` (the frozen config, no torch), :mod:`.result`, :mod:`.params`
(which parameters, where they sit), :mod:`.gradients` (``g_task``), :mod:`.masks` (top-k),
:mod:`.sketch` (G), :mod:`.tuning` (masked Adam, :func:`run_ftgd`), :mod:`.apply`
(apply/restore a cached update) and :mod:`.baselines` (LM loss, conventional fine-tuning).

Design decisions (documented here because the spec leaves them open):

* **Selectable parameters** (``include_embeddings=False``): every floating-point parameter
  except those of ``nn.Embedding`` modules (token and learned position embeddings,
  GPT-NeoX ``embed_in``) and of the output embeddings (LM head, tied or not). The *final
  norm* (``model.norm`` / ``ln_f`` / ``final_layer_norm``) **is** selectable: it belongs to
  the transformer stack, carries no per-word rows, and is tiny (576 of SmolLM2's 134.5M).
  With ``include_embeddings=True`` every parameter is selectable (a tied matrix once).
* **No model copy.** Tuning writes only the masked entries in place. Adam state (fp32 master
  values, first and second moments) is kept for those entries only, and the original values
  of every touched entry are saved and written back at the end, so the model is bit-identical
  afterwards (also on error or interrupt).
* **The update is stored as fp16 deltas** and is always applied as ``base + fp16(delta)``
  (:func:`applied`), so evaluating right after tuning and evaluating a cached result after a
  restart give identical numbers. Tuning itself never evaluates the tuned model.
* **Tune curve**: accuracy, mean margin and loss of each step's *batch*, measured in that
  step's forward pass (before its update: free, no extra passes). ``tune_before`` holds the
  metrics of the ``mask_pairs`` subset at the base model (free, from the mask gradient).
* **mask_update="per_step"** re-ranks the mask every step by ``|gradient of that step's
  batch loss|`` (same scope and fraction); only the current step's mask entries move (their
  Adam moments persist while out of the mask, but they do not step). The stored mask is the
  union of the per-step masks, i.e. every entry that was allowed to change.
* **Gradient sketch**: a count-sketch of ``g_task`` of dimension ``sketch_dim``. Entry ``i`` of
  tensor ``t`` goes to bucket ``(a_t + i) mod D`` with sign ``s[(b_t + i) mod (D+1)]``, where
  ``a_t, b_t`` come from a hash of the tensor name and ``s`` is a fixed splitmix64 sign
  pattern: the same hash for every task of a model, portable across numpy/torch versions,
  and computed with contiguous slices (no scatter; fast on CPU). Two entries that share a
  bucket always get independent signs, so ``<S a, S b>`` is unbiased for ``<a, b>`` with
  variance about ``(|a|^2 |b|^2 + <a,b>^2) / D``: the cosine's standard error is about
  ``sqrt((1 + cos^2) / D)``, i.e. <= 7e-4 at the default ``D = 2**22`` (<= 0.0055 at 2**16).
  The sketch is stored as fp16 divided by its max-abs value (cosines are scale-free).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> (module, attribute). Loaded on first use, so that the config and the result
# (no torch) can be imported without loading torch: ``from taskspace_core.ftgd import FTGDConfig``.
_EXPORTS: dict[str, tuple[str, str]] = {
    **{n: ("taskspace_core.ftgd.apply", n) for n in ("DeltaLike", "any_applied", "applied", "is_applied")},
    **{n: ("taskspace_core.ftgd.baselines", n) for n in ("conventional_finetune", "lm_loss")},
    **{n: ("taskspace_core.ftgd.config", n) for n in ("SKETCH_SEED", "FTGDConfig", "FTGDError")},
    **{n: ("taskspace_core.ftgd.gradients", n) for n in ("GRAD_CHUNK", "task_gradient")},
    "select_mask": ("taskspace_core.ftgd.masks", "select_mask"),
    **{
        n: ("taskspace_core.ftgd.params", n)
        for n in ("MODULE_TYPES", "layer_label", "mask_distribution", "module_type", "selectable_parameters")
    },
    "_grads_on": ("taskspace_core.ftgd.params", "grads_on"),  # used by probing's eval gradients
    "FTGDResult": ("taskspace_core.ftgd.result", "FTGDResult"),
    **{n: ("taskspace_core.ftgd.sketch", n) for n in ("gradient_similarity", "gradient_sketch", "sketch_cosine")},
    **{n: ("taskspace_core.ftgd.tuning", n) for n in ("Progress", "run_ftgd", "tune_batches")},
    "cpu_threads": ("taskspace_core.threads", "cpu_threads"),
}
__all__ = [  # the same names as _EXPORTS
    "DeltaLike",
    "FTGDConfig",
    "FTGDError",
    "FTGDResult",
    "GRAD_CHUNK",
    "MODULE_TYPES",
    "Progress",
    "SKETCH_SEED",
    "_grads_on",
    "any_applied",
    "applied",
    "conventional_finetune",
    "cpu_threads",
    "gradient_similarity",
    "gradient_sketch",
    "is_applied",
    "layer_label",
    "lm_loss",
    "mask_distribution",
    "module_type",
    "run_ftgd",
    "select_mask",
    "selectable_parameters",
    "sketch_cosine",
    "task_gradient",
    "tune_batches",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # the same names, for type checkers and editors
    from taskspace_core.ftgd.apply import DeltaLike, any_applied, applied, is_applied
    from taskspace_core.ftgd.baselines import conventional_finetune, lm_loss
    from taskspace_core.ftgd.config import SKETCH_SEED, FTGDConfig, FTGDError
    from taskspace_core.ftgd.gradients import GRAD_CHUNK, task_gradient
    from taskspace_core.ftgd.masks import select_mask
    from taskspace_core.ftgd.params import (
        MODULE_TYPES,
        layer_label,
        mask_distribution,
        module_type,
        selectable_parameters,
    )
    from taskspace_core.ftgd.params import grads_on as _grads_on
    from taskspace_core.ftgd.result import FTGDResult
    from taskspace_core.ftgd.sketch import gradient_similarity, gradient_sketch, sketch_cosine
    from taskspace_core.ftgd.tuning import Progress, run_ftgd, tune_batches
    from taskspace_core.threads import cpu_threads
