"""Real probing runs on tiny models, for tests that need a cache filled by the actual runner."""

from __future__ import annotations

from pathlib import Path

import yaml

from precompute.cli import main
from tests.tiny_models import NOUNS, NOUNS_PL, VERBS, VERBS_PL, tiny_loaded_model, train_tiny

TASK_NAMES = ("sva_singular", "sva_plural", "det_noun", "coordination")


def toy_rows() -> list[tuple[str, str, str, str]]:
    """Minimal pairs of a toy English: (good, bad, task, category)."""
    rows = []
    for n, npl in zip(NOUNS, NOUNS_PL, strict=True):
        for v, vpl in zip(VERBS[:2], VERBS_PL[:2], strict=True):
            rows.append((f"the {n} {v}", f"the {n} {vpl}", "sva_singular", "agreement"))
            rows.append((f"the {npl} {vpl}", f"the {npl} {v}", "sva_plural", "agreement"))
            rows.append((f"this {n} {v}", f"these {n} {v}", "det_noun", "determiners"))
            rows.append((f"the {n} and the {n} {vpl}", f"the {n} and the {n} {v}", "coordination", "agreement"))
    return rows


def write_tasks(path: Path, n_tasks: int = 3) -> Path:
    tasks = TASK_NAMES[:n_tasks]
    lines = ["sentence_good,sentence_bad,task,category"] + [",".join(r) for r in toy_rows() if r[2] in tasks]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_config(tmp: Path, models: list[dict], tasks_csv: Path, name: str = "tiny") -> Path:
    cfg = {
        "name": name,
        "series": "tiny-series",
        "models": models,
        "tasks": [f"file:{tasks_csv}"],
        "methods": ["transfer", "gradient"],
        "probe": {"n_tune": 8, "n_eval": 8},
        "ftgd": {"steps": 2, "mask_pairs": 4, "batch_size": 4, "mask_fraction": 0.05},
        "device": "cpu",
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def save_model(directory: Path, seed: int = 3, train_steps: int = 0) -> Path:
    """A tiny Llama saved as a local model directory, optionally trained on the toy pairs."""
    lm = tiny_loaded_model("llama", seed=seed)
    if train_steps:
        lm = train_tiny(lm, [r[0] for r in toy_rows()], steps=train_steps)
    lm.model.save_pretrained(directory)
    lm.tokenizer.save_pretrained(directory)
    return directory


def run_series(tmp: Path, steps: tuple[int, ...] = (0, 40), n_tasks: int = 4) -> Path:
    """Run the real runner on checkpoints of a tiny model (trained for ``steps``); returns the config."""
    models = []
    for step in steps:
        d = save_model(tmp / f"tiny-step{step}", train_steps=step)
        models.append({"name": str(d), "size": "tiny", "step": step})
    cfg = write_config(tmp, models, write_tasks(tmp / "tasks.csv", n_tasks))
    if main(["run", "--config", str(cfg), "--quiet"]) != 0:
        raise RuntimeError("the tiny run failed")
    return cfg
