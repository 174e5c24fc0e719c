"""Model suites (configs/pythia.yaml) and the GPU code path, offline and without a GPU.

The Pythia suite itself needs the hub; its code path is tested with tiny random-init
GPT-NeoX checkpoints saved locally at several "steps", run through the real CLI.
GPU behaviour (device choice, bf16 with float32 log-softmax, batch size from free GPU
memory, halving on out-of-memory) is tested with mocks: no GPU is lent to this project.
"""

from __future__ import annotations

import random
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import yaml

from precompute.config import load_config, parse_config
from taskspace_core.models import ModelError, ModelSpec, resolve_device, resolve_dtype
from tests.tiny_models import NOUNS, NOUNS_PL, VERBS, VERBS_PL, tiny_config, tiny_loaded_model, tiny_tokenizer

REPO = Path(__file__).resolve().parents[1]
PYTHIA = REPO / "configs" / "pythia.yaml"
PYTHIA_STEPS = (0, 512, 1000, 2000, 4000, 8000, 16000, 33000, 66000, 143000)

# Small enough that a model's 10 units take about a second on a shared 2-core CPU.
TINY_PROBE = {
    "probe": {"n_tune": 5, "n_eval": 5},
    "ftgd": {"steps": 2, "mask_pairs": 5, "batch_size": 5, "sketch_dim": 1024, "mask_fraction": 0.05},
}


# ----------------------------------------------------------------------------- helpers (test_ray uses them too)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixture in conftest.py


def save_checkpoints(root: Path, hidden_by_size: dict[str, int], steps: tuple[int, ...]) -> list[dict]:
    """Tiny GPT-NeoX models saved as local "checkpoints"; returns config model entries with size/step."""
    tok = tiny_tokenizer()
    entries = []
    for size, hidden in hidden_by_size.items():
        for step in steps:
            torch.manual_seed(1000 * hidden + step)  # every checkpoint its own weights
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_config(tiny_config("gpt_neox", len(tok), hidden=hidden))
            d = root / f"neox-{size}" / f"step{step}"
            model.save_pretrained(d)
            tok.save_pretrained(d)
            entries.append({"name": str(d), "size": size, "step": step})
    return entries


def write_pairs(path: Path, n_per_task: int = 10) -> Path:
    """A CSV of two toy agreement tasks built from tests.tiny_models words (10 pairs each: the minimum)."""
    rng = random.Random(0)
    rows = ["sentence_good,sentence_bad,task,category"]
    for i in range(n_per_task):
        n, npl = NOUNS[i % len(NOUNS)], NOUNS_PL[i % len(NOUNS_PL)]
        v = rng.randrange(len(VERBS))
        rows.append(f"the {n} {VERBS[v]},the {n} {VERBS_PL[v]},sva_singular,agreement")
        rows.append(f"these {npl} {VERBS_PL[v]},this {npl} {VERBS_PL[v]},det_plural,determiners")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def tiny_suite_config(root: Path, models: list[dict], name: str = "tiny-suite") -> Path:
    """A suite config over local checkpoints and a toy pair file, written as YAML."""
    cfg = {
        "name": name,
        "series": name,
        "models": models,
        "tasks": [f"file:{write_pairs(root / 'pairs.csv')}"],
        "methods": ["transfer", "gradient"],
        "device": "cpu",
        "dtype": "float32",
        **TINY_PROBE,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- configs/pythia.yaml


def test_pythia_suite_config_parses_offline() -> None:
    cfg = load_config(PYTHIA)
    assert cfg.tasks == ("hub:blimp",)  # all 67 paradigms: no names after hub:blimp
    assert set(cfg.methods) == {"transfer", "gradient"}
    assert len(cfg.models) == 3 * len(PYTHIA_STEPS)
    seen = set()
    for m in cfg.models:
        size = m.size
        assert m.spec.name_or_path == f"EleutherAI/pythia-{size}-deduped"
        assert m.spec.revision == f"step{m.step}"
        assert not m.spec.step0  # Pythia publishes a real step0 checkpoint
        seen.add((size, m.step))
    assert seen == {(s, st) for s in ("70m", "160m", "410m") for st in PYTHIA_STEPS}
    cfg.probe_config()  # every switch is a known field


def test_pythia_suite_names_all_blimp_paradigms(blimp_dir: Path) -> None:
    """hub:blimp with no names means every paradigm: the same 67 as the local BLiMP files."""
    assert len(list(blimp_dir.glob("*.jsonl"))) == 67
    assert ":" not in load_config(PYTHIA).tasks[0].removeprefix("hub:")


# ----------------------------------------------------------------------------- tiny suite through the runner


def test_tiny_suite_gives_one_space_per_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from precompute.cli import main
    from taskspace_core.results import load_series
    from taskspace_core.store import Store

    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    models = save_checkpoints(tmp_path, {"16h": 16, "32h": 32}, (0, 1000))
    config = tiny_suite_config(tmp_path, models)
    assert main(["run", "--config", str(config), "--quiet"]) == 0

    with Store() as store:
        spaces = load_series(store, "tiny-suite")
    assert len(spaces) == len(models)
    labels = sorted((s.model.size_label, s.model.step, s.model.name_or_path) for s in spaces)
    assert labels == sorted((m["size"], m["step"], m["name"]) for m in models)
    for s in spaces:
        assert s.T is not None and s.T.shape == (2, 2) and np.isfinite(s.T).all()
        assert s.G is not None and s.G.shape == (2, 2)
    assert len({s.model.fingerprint for s in spaces}) == len(models)  # each checkpoint its own weights


def test_suite_entries_keep_size_and_step_labels() -> None:
    cfg = parse_config(
        {
            "models": [
                {"name": "a", "revision": "step512", "size": "70m", "step": 512},
                {"name": "a", "size": "70m", "step": 0, "step0": True},
            ],
            "tasks": "builtin",
        }
    )
    assert [(m.size, m.step, m.spec.revision, m.spec.step0) for m in cfg.models] == [
        ("70m", 512, "step512", False),
        ("70m", 0, None, True),
    ]


# ----------------------------------------------------------------------------- GPU path, mocked


def _fake_cuda(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


def test_device_selection_with_two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cuda(monkeypatch, 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ModelError, match="does not exist: 2 GPU"):
        resolve_device("cuda:2")


def test_device_selection_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cuda(monkeypatch, 0)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ModelError, match="--device cpu"):
        resolve_device("cuda")


def test_auto_dtype_is_bf16_on_gpu_fp32_on_cpu() -> None:
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("float16", torch.device("cuda")) == torch.float16
    with pytest.raises(ModelError):
        ModelSpec("x", dtype="int8")


def test_cli_device_flag_overrides_config(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"models": ["m"], "tasks": ["builtin"], "device": "cpu"}))
    assert load_config(path).models[0].spec.device == "cpu"
    assert load_config(path, device="cuda:1").models[0].spec.device == "cuda:1"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_scores_in_float32(dtype: torch.dtype) -> None:
    """bf16/fp16 weights, float32 log-softmax: log-probs come out float32 and close to the fp32 ones."""
    from taskspace_core.packing import Row, encode, pack, token_logprobs

    lm = tiny_loaded_model("gpt_neox", seed=3)
    ids = encode(lm.tokenizer, lm.bos_id, ["the dog runs", "these cats sleep"])
    rows = [Row(tuple(x)) for x in ids]
    with torch.inference_mode():
        ref = token_logprobs(lm.model, pack(rows, lm.device, torch.float32, with_prefix=True))
        half = lm.model.to(dtype)
        out = token_logprobs(half, pack(rows, lm.device, dtype, with_prefix=True))
    assert out.dtype == torch.float32
    assert torch.allclose(out, ref, atol=0.1)


def test_batch_tokens_from_free_gpu_memory() -> None:
    from taskspace_core.scoring import default_batch_tokens

    model = tiny_loaded_model("llama").model  # hidden 32, intermediate 64: 4 * (6*32 + 2*64) = 1280 bytes/token
    cuda = torch.device("cuda", 0)
    with mock.patch.object(torch.cuda, "mem_get_info", return_value=(2 * 1280 * 10_000, 80 * 2**30)) as info:
        assert default_batch_tokens(cuda, model) == 10_000  # half the free memory
        info.assert_called_once_with(cuda)
    with mock.patch.object(torch.cuda, "mem_get_info", return_value=(100, 80 * 2**30)):
        assert default_batch_tokens(cuda, model) == 512  # floor
    with mock.patch.object(torch.cuda, "mem_get_info", return_value=(80 * 2**30, 80 * 2**30)):
        assert default_batch_tokens(cuda, model) == 131072  # cap


def test_out_of_memory_halves_the_batch_and_keeps_the_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    from taskspace_core import scoring
    from taskspace_core.scoring import PairScorer, ScoringConfig
    from taskspace_core.tasks import MinimalPair

    lm = tiny_loaded_model("gpt2", seed=1)
    pairs = [MinimalPair(f"the {n} {v}", f"the {n} {vp}") for n in NOUNS for v, vp in zip(VERBS, VERBS_PL, strict=True)]
    want = PairScorer(lm, ScoringConfig(max_batch_tokens=4096)).score_pairs(pairs).margins

    real = scoring.token_logprobs
    calls = {"oom": 0}

    def tight_memory(model, batch):
        if batch.input_ids.numel() > 6:  # a GPU that fits 6 positions at a time (the 72 pairs lay out 14)
            calls["oom"] += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, batch)

    monkeypatch.setattr(scoring, "token_logprobs", tight_memory)
    scorer = PairScorer(lm, ScoringConfig(max_batch_tokens=4096))
    got = scorer.score_pairs(pairs).margins
    assert calls["oom"] > 0
    assert scorer.batch_tokens < 4096  # it remembers the smaller budget
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_non_oom_errors_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from taskspace_core import scoring
    from taskspace_core.scoring import PairScorer
    from taskspace_core.tasks import MinimalPair

    lm = tiny_loaded_model("gpt2")

    def broken(model, batch):
        raise RuntimeError("device-side assert triggered")

    monkeypatch.setattr(scoring, "token_logprobs", broken)
    with pytest.raises(RuntimeError, match="device-side assert"):
        PairScorer(lm).score_pairs([MinimalPair("the dog runs", "the dog run")] * 4)
