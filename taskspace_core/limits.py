"""Resource bounds on a run, checked before anything runs (no torch: config and header reads only).

=====================  =========  =========  ==============================================
limit                  GPU        CPU        what it bounds
=====================  =========  =========  ==============================================
max_tasks              300        100        tasks in one run
max_pairs_per_task     20000      5000       minimal pairs in one task
max_units              200000     20000      units of one plan (transfer grows as tasks^2)
max_model_params       3.0e9      5.0e8      parameters of one model (config/safetensors header)
max_sentence_chars     1000       1000       characters in one sentence
=====================  =========  =========  ==============================================

A sentence must also fit the model's context window: at most one token per UTF-8 byte plus
BOS/EOS, so a sentence of ``B`` bytes fits when ``B + 2 <= context``. The admin raises any
limit in one YAML file named by ``TASKSPACE_LIMITS``; keys at the top apply to both devices,
keys under ``gpu:`` or ``cpu:`` to one::

    max_units: 500000
    gpu: {max_model_params: 8.0e9}

A model's size comes from its ``*.safetensors`` headers (exact), else its ``config.json``
(estimated), else a size declared in the allow-list. A hub model is only looked up in the
local Hugging Face cache (no network): in server mode a hub model with no cached config and
no declared size is refused.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from taskspace_core import allowlist
from taskspace_core.paths import cache_dir

ENV_FILE = "TASKSPACE_LIMITS"
_HEADER_MAX = 100 * 2**20  # a safetensors header is JSON; a bigger one is not a model we load
_CTX_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "seq_length", "max_sequence_length")
_SOURCES = {"safetensors": "safetensors header", "config": "estimated from config.json", "declared": "declared size"}
_OFFLINE_PARAMS = 134_515_008  # SmolLM2-135M (tied embedding), when its folder is not converted yet


class LimitError(ValueError):
    """A run exceeds a resource limit; the message names the limit and how to raise it."""


@dataclass(frozen=True)
class Limits:
    max_tasks: int
    max_pairs_per_task: int
    max_units: int
    max_model_params: float
    max_sentence_chars: int


DEFAULTS = {
    "gpu": Limits(300, 20000, 200_000, 3e9, 1000),  # the table in the module docstring
    "cpu": Limits(100, 5000, 20_000, 5e8, 1000),
}


@dataclass(frozen=True)
class ModelFacts:
    """What planning knows about a model without loading it."""

    params: float | None  # None: unknown
    context: int | None
    source: str  # where the size came from: safetensors | config | declared | unknown


def gpu_visible() -> bool:
    """A CUDA GPU without importing torch (the NVIDIA driver's device nodes), unless CUDA_VISIBLE_DEVICES hides it."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/gpus").is_dir()


def device_kind(device: str) -> str:
    d = (device or "auto").lower()
    if d == "auto":
        return "gpu" if gpu_visible() else "cpu"
    return "gpu" if d.startswith("cuda") else "cpu"


def _check_keys(raw: dict, where: str) -> None:
    known = {f.name for f in fields(Limits)}
    bad = set(raw) - known - {"gpu", "cpu"}
    if bad:
        raise LimitError(f"{where}: unknown limit(s) {', '.join(sorted(bad))}; known: {', '.join(sorted(known))}")
    for k, v in raw.items():
        if k in known and allowlist.parse_count(v) is None:
            raise LimitError(f"{where}: {k} must be a positive number (e.g. 300, 3e9, 3B)")


def load_limits(kind: str = "gpu") -> Limits:
    """The limits for ``kind`` (gpu | cpu): defaults, overridden by the file named by ``TASKSPACE_LIMITS``."""
    base = DEFAULTS[kind]
    path = os.environ.get(ENV_FILE, "").strip()
    if not path:
        return base
    raw = allowlist.read_mapping(path, "limits file", ENV_FILE, LimitError)
    _check_keys(raw, path)
    sub = raw.get(kind) or {}
    if not isinstance(sub, dict):
        raise LimitError(f"{path}: '{kind}' must be a mapping of limit: value")
    _check_keys(sub, f"{path}: {kind}")
    over = {k: v for k, v in {**raw, **sub}.items() if k not in ("gpu", "cpu")}
    cast = {f.name: (int if f.type in (int, "int") else float) for f in fields(Limits)}
    return replace(base, **{k: cast[k](allowlist.parse_count(v)) for k, v in over.items()})


def limits_table(kind: str) -> dict[str, float]:
    return asdict(load_limits(kind))


def refusal(limit: str, kind: str, detail: str, value: float) -> str:
    """The one-line refusal: which limit, its value, how to raise it."""
    shown = f"{value:,.0f}" if value < 1e7 else f"{value:.3g}"
    return (
        f"{detail}: over the limit {limit} = {shown} ({kind.upper()}); to raise it, set {limit} "
        f"(or {kind}: {{{limit}: ...}}) in the YAML file named by {ENV_FILE}"
    )


# ---- model size and context, from headers and configs only -------------------------------


def safetensors_params(path: str | Path) -> int:
    """Parameters in one ``.safetensors`` file, from its JSON header (the weights are never read)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError(f"{path}: not a safetensors file (shorter than its header)")
        (n,) = struct.unpack("<Q", head)
        if n > _HEADER_MAX:
            raise ValueError(f"{path}: safetensors header of {n} bytes is implausible")
        header = json.loads(f.read(n))
    return sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")


def config_params(cfg: dict[str, Any]) -> int | None:
    """Parameters estimated from a decoder config (embeddings + attention + MLP per layer)."""
    h = cfg.get("hidden_size") or cfg.get("n_embd") or cfg.get("d_model")
    layers = cfg.get("num_hidden_layers") or cfg.get("n_layer") or cfg.get("num_layers")
    vocab = cfg.get("vocab_size")
    if not (isinstance(h, int) and isinstance(layers, int) and isinstance(vocab, int)):
        return None
    inter = cfg.get("intermediate_size") or cfg.get("n_inner") or 4 * h
    heads = cfg.get("num_attention_heads") or cfg.get("n_head") or 1
    kv = cfg.get("num_key_value_heads") or heads
    attn = 2 * h * h + 2 * h * (h * kv // max(1, heads))  # q, o + k, v (grouped-query shrinks k, v)
    mlp = (3 if cfg.get("hidden_act") in ("silu", "swiglu") or "llama" in str(cfg.get("model_type")) else 2) * h * inter
    tied = cfg.get("tie_word_embeddings", True)
    return int(vocab * h * (1 if tied else 2) + layers * (attn + mlp + 4 * h))


def context_window(cfg: dict[str, Any]) -> int | None:
    for k in _CTX_KEYS:
        v = cfg.get(k)
        if isinstance(v, int) and v > 0:
            return v
    return None


def _read_json(path: Path | str | None) -> dict[str, Any] | None:
    if not path or not Path(path).is_file():
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _weight_files(folder: Path) -> list[Path]:
    index = _read_json(folder / "model.safetensors.index.json")
    if index and isinstance(index.get("weight_map"), dict):
        return [folder / f for f in sorted(set(index["weight_map"].values()))]
    single = folder / "model.safetensors"
    return [single] if single.is_file() else []


def folder_facts(folder: Path) -> ModelFacts:
    """Size and context of a local model folder: safetensors headers if all are there, else config.json."""
    cfg = _read_json(folder / "config.json") or {}
    files = _weight_files(folder)
    if files and all(f.is_file() for f in files):
        try:
            return ModelFacts(float(sum(safetensors_params(f) for f in files)), context_window(cfg), "safetensors")
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged header: fall back to the config's estimate
    est = config_params(cfg)
    return ModelFacts(float(est) if est else None, context_window(cfg), "config" if est else "unknown")


def _hub_cached(repo: str, filename: str, revision: str | None) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    try:
        got = try_to_load_from_cache(repo, filename, revision=revision, cache_dir=os.environ.get("HF_HUB_CACHE"))
    except (ValueError, OSError):
        return None
    return got if isinstance(got, str) else None


def hub_facts(repo: str, revision: str | None) -> ModelFacts:
    """Size and context of a hub model from the local Hugging Face cache only (never the network)."""
    cfg_path = _hub_cached(repo, "config.json", revision)
    if cfg_path is None:
        return ModelFacts(None, None, "unknown")
    folder = Path(cfg_path).parent
    return folder_facts(folder)


def model_facts(name: str, revision: str | None = None) -> ModelFacts:
    """What a plan can know about a model without loading it; a declared allow-list size wins if nothing else."""
    if name == allowlist.OFFLINE_DEFAULT:
        for d in (Path(os.environ.get("TASKSPACE_MODEL_DIR", "/nonexistent")) / name, cache_dir() / "models" / name):
            if (d / "config.json").is_file():
                return folder_facts(d)
        return ModelFacts(float(_OFFLINE_PARAMS), None, "declared")
    local = allowlist.is_local_name(name, allowlist.env_server_mode())
    facts = folder_facts(Path(name).expanduser()) if local else hub_facts(name, revision)
    if facts.params is None:
        al = allowlist.load_allowlist()
        key = str(allowlist.resolve_user_path(name)) if local else name
        if key in al.declared_params:
            return ModelFacts(al.declared_params[key], facts.context, "declared")
    return facts


# ---- the checks ------------------------------------------------------------------------


def check_models(models: Iterable[tuple[str, str | None]], kind: str, server: bool) -> tuple[list[str], list[int]]:
    """Refusals for ``(name, revision)`` models (allow-list in server mode, size) and their known context windows."""
    lim = load_limits(kind)
    errors, contexts = [], []
    for name, rev in models:
        label = f"{name}@{rev}" if rev else name
        if server and (why := allowlist.check_model(name, True)):
            errors.append(f"model {label}: {why}")
            continue
        facts = model_facts(name, rev)
        if facts.context:
            contexts.append(facts.context)
        if facts.params is None:
            if server:
                errors.append(
                    f"model {label}: its size is unknown (no config.json in the local Hugging Face cache); "
                    f"limit max_model_params cannot be checked, so an admin declares it in the allow-list "
                    f"({allowlist.ENV_FILE}: models: - {{name: {name}, params: ...}}) or pre-downloads the model"
                )
        elif facts.params > lim.max_model_params:
            detail = f"model {label} has {facts.params:.3g} parameters ({_SOURCES[facts.source]})"
            errors.append(refusal("max_model_params", kind, detail, lim.max_model_params))
    return errors, contexts


def count_units(n_tasks: int, n_models: int, methods: Sequence[str], transfer: str, tuning_halves: bool = False) -> int:
    """Units a plan will hold, counted before any key is built: base + ftgd, then N^2 transfer or N egrad
    (and with ``tuning_halves`` two more ftgd and N^2 transfers on the halves of each tune split)."""
    per = 2 * n_tasks
    if "transfer" in methods:
        per += n_tasks if transfer == "first_order" else n_tasks * n_tasks
        if tuning_halves and transfer != "first_order":
            per += 2 * (n_tasks + n_tasks * n_tasks)
    return per * n_models


def _sentence_errors(tasks: Iterable[Any], lim: Limits, kind: str, context: int | None) -> list[str]:
    for t in tasks:
        for row, p in enumerate(t.pairs, start=1):
            for which, s in (("good", p.good), ("bad", p.bad)):
                if len(s) > lim.max_sentence_chars:
                    detail = f"task '{t.name}', row {row}: the {which} sentence has {len(s):,} characters"
                    return [refusal("max_sentence_chars", kind, detail, lim.max_sentence_chars)]
                n = len(s.encode("utf-8")) + 2
                if context and n > context:
                    return [
                        f"task '{t.name}', row {row}: the {which} sentence may need up to {n:,} tokens, more than "
                        f"the smallest model context window ({context:,} tokens); shorten or remove it"
                    ]
    return []


def check_tasks(
    tasks: Sequence[Any], n_models: int, methods: Sequence[str], transfer: str, kind: str, tuning_halves: bool = False
) -> list[str]:
    """Refusals for the task set: number of tasks, pairs per task, units of the plan."""
    lim = load_limits(kind)
    errors = []
    if len(tasks) > lim.max_tasks:
        errors.append(refusal("max_tasks", kind, f"this run has {len(tasks):,} tasks", lim.max_tasks))
    big = next((t for t in tasks if len(t.pairs) > lim.max_pairs_per_task), None)
    if big is not None:
        detail = f"task '{big.name}' has {len(big.pairs):,} pairs"
        errors.append(refusal("max_pairs_per_task", kind, detail, lim.max_pairs_per_task))
    units = count_units(len(tasks), n_models, methods, transfer, tuning_halves)
    if units > lim.max_units:
        detail = f"this plan has {units:,} units ({n_models} model(s) x {len(tasks):,} tasks)"
        errors.append(refusal("max_units", kind, detail, lim.max_units))
    return errors


def check_plan(cfg: Any, tasks: Sequence[Any], server: bool | None = None) -> None:
    """Refuse a run config (a ``RunConfig``) over its task set before any unit key is built or model loaded."""
    server = allowlist.env_server_mode() if server is None else server
    specs = [m.spec for m in cfg.models]
    kind = device_kind(specs[0].device if specs else "auto")
    errors, contexts = check_models(dict.fromkeys((s.name_or_path, s.revision) for s in specs), kind, server)
    transfer = str((cfg.probe or {}).get("transfer", "exact"))
    halves = (cfg.probe or {}).get("tuning_halves") is True
    errors += check_tasks(tasks, len(specs), cfg.methods, transfer, kind, halves)
    if not errors:
        errors += _sentence_errors(tasks, load_limits(kind), kind, min(contexts) if contexts else None)
    if errors:
        raise LimitError("; ".join(errors))


def check_request(raw: dict[str, Any], server: bool) -> list[str]:
    """The Run page's checks on a config dict before it starts anything: the models' sizes (header reads only)."""
    models = [m if isinstance(m, dict) else {"name": str(m)} for m in raw.get("models") or []]
    kind = device_kind(str(raw.get("device", "auto")))
    pairs = dict.fromkeys((str(m.get("name", "")), m.get("revision")) for m in models)
    try:
        return check_models(pairs, kind, server)[0]
    except (LimitError, allowlist.AllowlistError) as e:  # a broken admin file: say so on the page
        return [str(e)]
