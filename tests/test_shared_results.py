"""Results that never mix: two users' uploads of the same pairs with other tags share units, not spaces."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from precompute.cli import main
from taskspace_core import probing, tasksets
from taskspace_core.pairfiles import load_pair_file
from taskspace_core.results import list_spaces, load_space
from taskspace_core.store import Store
from tests.tiny_runs import save_model, toy_rows, write_config

TASKS = ("sva_singular", "det_noun")


def tagged_csv(path: Path, tag: str, values: dict[str, str]) -> Path:
    """The toy pairs of TASKS with one tag column ``tag`` (a value per task)."""
    lines = [f"sentence_good,sentence_bad,task,category,{tag}"]
    lines += [",".join([*r, values[r[2]]]) for r in toy_rows() if r[2] in TASKS]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_same_pairs_other_tags_get_own_spaces_and_shared_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread: None
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("TASKSPACE_CACHE", str(cache))
    calls: list[str] = []
    real = probing.ftgd_unit

    def counting(loaded, task, pcfg):  # noqa: ANN001, ANN202 - same signature as the real unit
        calls.append(task.name)
        return real(loaded, task, pcfg)

    monkeypatch.setattr(probing, "ftgd_unit", counting)
    model = save_model(tmp_path / "model")
    users = {
        "alice": ("voice", {"sva_singular": "active", "det_noun": "passive"}),
        "bob": ("register", {"sva_singular": "formal", "det_noun": "casual"}),
    }
    for user, (tag, values) in users.items():
        ts = load_pair_file(tagged_csv(tmp_path / f"{user}.csv", tag, values), set_name=user)
        tasksets.save(ts, user, cache)
        cfg = write_config(tmp_path, [{"name": str(model)}], tmp_path / f"{user}.csv", name=user)
        raw = yaml.safe_load(cfg.read_text())
        cfg.write_text(yaml.safe_dump({**raw, "tasks": [f"set:{user}"]}))
        assert main(["run", "--config", str(cfg), "--quiet"]) == 0

    assert sorted(calls) == sorted(TASKS)  # FTGD ran once per task: bob's run reused alice's units
    store = Store(cache)
    spaces = {sp.taskset: sp for rec in list_spaces(store) if (sp := load_space(store, rec["key"])) is not None}
    assert sorted(spaces) == ["alice", "bob"]
    for user, (tag, values) in users.items():
        sp = spaces[user]
        assert sp.levels() == ["category", tag]  # each user's own hypothesis level, not the other's
        assert dict(zip(sp.names, sp.labels(tag), strict=True)) == values
    # same pairs, same units: the matrices agree exactly
    assert (spaces["alice"].T == spaces["bob"].T).all() and (spaces["alice"].G == spaces["bob"].G).all()
