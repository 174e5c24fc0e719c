"""Checkpoints, resume state and suite.json: written atomically, read back with weights_only."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from taskspace_core.pretrain.config import SUITE_FILE, SUITE_VERSION, PretrainConfig, SizeSpec


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
    # sizes may train in parallel processes (one thread each is faster on small models than two
    # threads on one): the read-modify-write of suite.json holds an exclusive lock
    with open(out / f".{SUITE_FILE}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        suite = read_suite(out) or {"version": SUITE_VERSION, "sizes": {}, "checkpoints": [], "curves": {}}
        suite.update(head)
        suite["sizes"][size.name] = size_info
        if record is not None:
            rows = [c for c in suite["checkpoints"] if not (c["size"] == size.name and c["step"] == record["step"])]
            suite["checkpoints"] = sorted([*rows, record], key=lambda c: (c["non_embedding_params"], c["step"]))
        suite["curves"][size.name] = curve
        tmp = out / f".{SUITE_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(suite, indent=1))
        os.replace(tmp, out / SUITE_FILE)


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )
