"""Server-mode allow-list (models, data folders) and the resource limits checked before a plan is built."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from taskspace_core import allowlist, limits
from taskspace_core.tasks import MinimalPair, Task

# a folder the test account can see (exists) and one that cannot exist; replies must not tell them apart
PROBES = ["/etc", "/proc/self", "~root", "~no_such_user_xyz", "/no/such/dir", "cache", "configs", "../../etc"]


@pytest.fixture()
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    roots = tmp_path / "models"
    (roots / "gpt").mkdir(parents=True)
    (tmp_path / "data" / "blimp").mkdir(parents=True)
    (tmp_path / "single").mkdir()
    path = tmp_path / "allow.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "models": ["EleutherAI/pythia-70m", {"name": "big/declared", "params": 7e9}, str(tmp_path / "single")],
                "model_roots": [str(roots)],
                "data_roots": [str(tmp_path / "data")],
            }
        )
    )
    monkeypatch.setenv("TASKSPACE_ALLOWLIST", str(path))
    monkeypatch.setenv("TASKSPACE_SERVER_MODE", "1")
    monkeypatch.delenv("TASKSPACE_ALLOWED_MODEL_DIRS", raising=False)
    monkeypatch.delenv("TASKSPACE_LIMITS", raising=False)
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)  # the repo root, where cache/ and configs/ exist
    return tmp_path


def test_allowed_models_and_folders(server: Path) -> None:
    assert allowlist.check_model("smollm2-135m") is None  # the offline default, always
    assert allowlist.check_model("EleutherAI/pythia-70m") is None
    assert allowlist.check_model(str(server / "models" / "gpt")) is None  # under a model root
    assert allowlist.check_model(str(server / "single")) is None  # listed folder
    assert "allow-list" in allowlist.check_model("EleutherAI/pythia-12b")
    assert "allow-list" in allowlist.check_model(str(server / "models" / "gpt" / ".." / ".."))  # no '..' escape
    assert allowlist.check_data_path(str(server / "data" / "blimp")) is None


@pytest.mark.parametrize("check", [allowlist.check_model, allowlist.check_data_path])
def test_refusals_do_not_reveal_what_exists(server: Path, check) -> None:
    replies = {p: check(p) for p in PROBES}
    assert all(replies.values()), replies  # every probe refused, 'cache' and 'configs' included
    assert Path("cache").is_dir() and Path("configs").is_dir() and Path("/etc").is_dir()
    assert len(set(replies.values())) == 1, replies  # one reply for existing and missing paths alike


def test_one_word_names_are_not_hub_names(server: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert allowlist.is_local_name("cache", server=True)  # in server mode: a folder, hence refused above
    assert not allowlist.is_local_name("EleutherAI/pythia-70m", server=True)
    monkeypatch.setenv("TASKSPACE_SERVER_MODE", "0")
    assert allowlist.check_model("gpt2") is not None  # not owner/name, and no such local folder
    assert allowlist.check_model("/etc") is None  # an existing folder with no custom code: a local user's choice
    assert "no such folder" in allowlist.check_model("/no/such/dir")
    assert allowlist.check_data_path("/etc") is None  # a local user's own disk


def test_env_model_dirs_still_add_roots(server: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = server / "extra"
    (extra / "m").mkdir(parents=True)
    assert allowlist.check_model(str(extra / "m")) is not None
    monkeypatch.setenv("TASKSPACE_ALLOWED_MODEL_DIRS", str(extra))
    assert allowlist.check_model(str(extra / "m")) is None


# ---- model size from headers and configs ----------------------------------------------


def write_safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    """A safetensors file whose header lists ``shapes`` (float32 zeros as the data)."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = 4 * (1 if not shape else __import__("math").prod(shape))
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0" * offset)


def test_size_from_safetensors_header(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "model.safetensors", {"a": [3, 5], "b": [7], "c": []})
    (tmp_path / "config.json").write_text(json.dumps({"n_positions": 64}))
    assert limits.safetensors_params(tmp_path / "model.safetensors") == 3 * 5 + 7 + 1
    facts = limits.folder_facts(tmp_path)
    assert (facts.params, facts.context, facts.source) == (23, 64, "safetensors")


def test_size_from_sharded_headers(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "m-1.safetensors", {"x": [10, 10]})
    write_safetensors(tmp_path / "m-2.safetensors", {"y": [4, 25]})
    index = {"weight_map": {"x": "m-1.safetensors", "y": "m-2.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert limits.folder_facts(tmp_path).params == 200


def test_size_estimated_from_config(tmp_path: Path) -> None:
    h, layers, vocab, inter = 64, 3, 1000, 256
    cfg = {"hidden_size": h, "num_hidden_layers": layers, "vocab_size": vocab, "intermediate_size": inter}
    cfg |= {"model_type": "gpt_neox", "tie_word_embeddings": False, "max_position_embeddings": 2048}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    expected = 2 * vocab * h + layers * (4 * h * h + 2 * h * inter + 4 * h)
    facts = limits.folder_facts(tmp_path)
    assert (facts.params, facts.context, facts.source) == (expected, 2048, "config")


# ---- each limit's refusal --------------------------------------------------------------


def task(name: str, n: int, good: str = "The cat sleeps.") -> Task:
    return Task(name, tuple(MinimalPair(f"{good} {i}", f"The cat sleep. {i}") for i in range(n)))


def run_cfg(model: str, device: str = "cpu", methods=("transfer", "gradient"), transfer: str = "exact"):
    spec = SimpleNamespace(name_or_path=model, revision=None, device=device)
    return SimpleNamespace(models=(SimpleNamespace(spec=spec),), methods=methods, probe={"transfer": transfer})


@pytest.fixture()
def tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("TASKSPACE_SERVER_MODE", raising=False)
    monkeypatch.delenv("TASKSPACE_LIMITS", raising=False)
    d = tmp_path / "tiny"
    d.mkdir()
    write_safetensors(d / "model.safetensors", {"w": [100, 10]})
    (d / "config.json").write_text(json.dumps({"n_positions": 40}))
    return str(d)


def set_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **values: object) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text(yaml.safe_dump(values))
    monkeypatch.setenv("TASKSPACE_LIMITS", str(path))


def refused(cfg, tasks) -> str:
    with pytest.raises(limits.LimitError) as e:
        limits.check_plan(cfg, tasks)
    msg = str(e.value)
    assert "TASKSPACE_LIMITS" in msg or "shorten" in msg  # says how to get past it
    return msg


def test_within_limits_passes(tiny_model: str) -> None:
    limits.check_plan(run_cfg(tiny_model), [task("a", 20), task("b", 20)])


def test_max_tasks(tiny_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_limits(tmp_path, monkeypatch, cpu={"max_tasks": 2})
    msg = refused(run_cfg(tiny_model), [task(f"t{i}", 10) for i in range(3)])
    assert "max_tasks = 2" in msg and "3 tasks" in msg


def test_max_pairs_per_task(tiny_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_limits(tmp_path, monkeypatch, max_pairs_per_task=50)
    msg = refused(run_cfg(tiny_model), [task("small", 10), task("huge", 51)])
    assert "max_pairs_per_task = 50" in msg and "'huge' has 51 pairs" in msg


def test_max_units_counts_transfer_as_n_squared(tiny_model: str, tmp_path: Path, monkeypatch) -> None:
    set_limits(tmp_path, monkeypatch, max_units=2 * 10 + 10 * 10 - 1)
    tasks = [task(f"t{i}", 10) for i in range(10)]
    assert "max_units" in refused(run_cfg(tiny_model), tasks)
    limits.check_plan(run_cfg(tiny_model, transfer="first_order"), tasks)  # 30 units fit
    assert limits.count_units(10_000, 1, ["transfer"], "exact") == 10_000**2 + 20_000


def test_max_model_params(tiny_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_limits(tmp_path, monkeypatch, cpu={"max_model_params": 999}, gpu={"max_model_params": 5000})
    msg = refused(run_cfg(tiny_model, device="cpu"), [task("a", 10)])
    assert "max_model_params" in msg and "1e+03 parameters" in msg and "(CPU)" in msg
    limits.check_plan(run_cfg(tiny_model, device="cuda"), [task("a", 10)])  # the GPU limit is larger


def test_sentence_length_names_task_and_row(tiny_model: str, tmp_path: Path, monkeypatch) -> None:
    long = task("long", 5)
    pairs = list(long.pairs)
    pairs[3] = MinimalPair("x" * 39, "y")  # 39 bytes + BOS/EOS > the 40-token context
    msg = refused(run_cfg(tiny_model), [task("ok", 5), Task("long", tuple(pairs))])
    assert "task 'long', row 4" in msg and "context window (40 tokens)" in msg
    set_limits(tmp_path, monkeypatch, max_sentence_chars=10)
    msg = refused(run_cfg(tiny_model), [task("ok", 5, good="Hi.")])
    assert "max_sentence_chars = 10" in msg and "task 'ok', row 1" in msg


def test_unknown_hub_size_refused_in_server_mode(server: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(server / "empty-hf"))
    tasks = [task("a", 10)]
    with pytest.raises(limits.LimitError, match="size is unknown"):
        limits.check_plan(run_cfg("EleutherAI/pythia-70m"), tasks)
    with pytest.raises(limits.LimitError, match=r"7e\+09 parameters \(declared size\)"):
        limits.check_plan(run_cfg("big/declared", device="cuda"), tasks)  # declared size, over the 3e9 default
    with pytest.raises(limits.LimitError, match="allow-list"):
        limits.check_plan(run_cfg("someone/else"), tasks)
    monkeypatch.setenv("TASKSPACE_SERVER_MODE", "0")
    limits.check_plan(run_cfg("EleutherAI/pythia-70m"), tasks)  # a local user: unknown size is not refused


def test_hub_size_from_the_local_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = tmp_path / "hf"
    snap = hub / "models--owner--tiny" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (hub / "models--owner--tiny" / "refs").mkdir()
    (hub / "models--owner--tiny" / "refs" / "main").write_text("a" * 40)
    (snap / "config.json").write_text(json.dumps({"n_positions": 128}))
    write_safetensors(snap / "model.safetensors", {"w": [6, 7]})
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    assert limits.model_facts("owner/tiny") == limits.ModelFacts(42.0, 128, "safetensors")
    assert limits.model_facts("owner/other").params is None  # not cached: never asks the network


def test_bad_limits_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_limits(tmp_path, monkeypatch, max_taks=3)
    with pytest.raises(limits.LimitError, match="unknown limit"):
        limits.load_limits("cpu")
    set_limits(tmp_path, monkeypatch, max_tasks=3, gpu={"max_tasks": 7})
    assert (limits.load_limits("cpu").max_tasks, limits.load_limits("gpu").max_tasks) == (3, 7)


def test_counts_as_admins_write_them() -> None:
    assert [allowlist.parse_count(v) for v in (300, 1.4e9, "1.4e9", "7.0e9", "1.4B", "135M", "2_000")] == [
        300.0,
        1.4e9,
        1.4e9,
        7.0e9,
        1.4e9,
        135e6,
        2000.0,
    ]
    assert [allowlist.parse_count(v) for v in (0, -3, True, "lots", "", None, "inf")] == [None] * 7


def test_runner_task_sources_are_checked_against_data_roots(server: Path) -> None:
    """A config handed to a runner directly (not via the Run page) cannot read files outside the data roots."""
    from taskspace_core.sources import load_many
    from taskspace_core.tasks import TaskError

    outside = server / "elsewhere.csv"
    outside.write_text("task,sentence_good,sentence_bad\nmine,The dog runs.,The dog run.\n", encoding="utf-8")
    inside = server / "data" / "mine.csv"
    inside.write_text(outside.read_text(encoding="utf-8"), encoding="utf-8")
    escape = server / "data" / ".." / "elsewhere.csv"
    for spec in (f"file:{outside}", str(outside), f"blimp:{server}", f"file:{escape}"):
        with pytest.raises(TaskError, match="only reads"):
            load_many(["builtin:anaphor_number", spec])
    assert [t.name for t in load_many([f"file:{inside}"]).tasks]  # below a data root: read
