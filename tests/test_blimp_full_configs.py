"""configs/blimp_full*.yaml: all 67 BLiMP paradigms validate and plan (dry run, no model loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from precompute.cli import main
from taskspace_core import methods as registry
from taskspace_core.configs import load_config

ROOT = Path(__file__).resolve().parents[1]
N = 67


@pytest.fixture()
def in_repo(tmp_path, monkeypatch, blimp_dir):
    monkeypatch.chdir(ROOT)  # the configs name the BLiMP folder relative to the repository root
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))


def _plan(name: str, capsys) -> dict:
    assert main(["run", "--config", f"configs/{name}.yaml", "--dry-run", "--json", "--no-weights"]) == 0
    return json.loads(capsys.readouterr().out)


def test_both_configs_validate_and_differ_only_in_the_transfer_estimate():
    fo, ex = (load_config(ROOT / "configs" / f"{n}.yaml") for n in ("blimp_full", "blimp_full_exact"))
    assert fo.probe_config().transfer == "first_order" and ex.probe_config().transfer == "exact"
    assert set(fo.methods) == {"transfer", "gradient", "overlap"} and fo.methods == ex.methods
    assert fo.models == ex.models and fo.tasks == ex.tasks
    # same FTGD and split keys: the exact twin reuses the first-order run's base and FTGD units
    assert fo.probe_config().unit_key("ftgd") == ex.probe_config().unit_key("ftgd")
    assert fo.probe_config().unit_key("base") == ex.probe_config().unit_key("base")


def test_first_order_plan_is_linear_in_the_paradigms(in_repo, capsys):
    plan = _plan("blimp_full", capsys)
    assert plan["tasks"] == N
    assert {k: v["total"] for k, v in plan["by_type"].items()} == {"base": N, "ftgd": N, "egrad": N}
    assert plan["units_todo"] == 3 * N and plan["estimated_seconds"] > 0


def test_exact_twin_plans_every_pair_and_says_how_long(in_repo, capsys):
    fo, ex = _plan("blimp_full", capsys), _plan("blimp_full_exact", capsys)
    assert {k: v["total"] for k, v in ex["by_type"].items()} == {"base": N, "ftgd": N, "transfer": N * N}
    # a fresh cache prices each unit at its kind's first guess: the N x N transfer units are the bulk
    from precompute.config import load_config

    pcfg = load_config("configs/blimp_full.yaml").probe_config()
    pex = load_config("configs/blimp_full_exact.yaml").probe_config()
    assert (pcfg.n_eval, pcfg.ftgd) == (pex.n_eval, pex.ftgd)  # same unit sizes: only the transfer estimate differs
    seconds = {k: registry.kind(k).seconds * registry.kind(k).size(pcfg) for k in ("base", "ftgd", "egrad", "transfer")}
    assert fo["estimated_seconds"] == pytest.approx(N * (seconds["base"] + seconds["ftgd"] + seconds["egrad"]), abs=0.1)
    assert ex["estimated_seconds"] == pytest.approx(
        N * (seconds["base"] + seconds["ftgd"] + N * seconds["transfer"]), abs=0.1
    )
    assert main(["run", "--config", "configs/blimp_full_exact.yaml", "--dry-run", "--no-weights"]) == 0
    text = capsys.readouterr().out
    assert f"{N * N} units" in text and "estimated" in text and "min" in text
