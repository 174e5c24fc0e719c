"""The runner's plan: limits refuse before any model loads; the app's plan never loads weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from precompute.cli import main
from tests.tiny_runs import save_model, write_config, write_tasks


@pytest.fixture()
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TASKSPACE_SERVER_MODE", raising=False)
    monkeypatch.delenv("TASKSPACE_LIMITS", raising=False)

    def no_loading(spec):
        raise AssertionError(f"planning loaded the weights of {spec.label}")

    from taskspace_core import models  # the runner imports load_model from here when it needs weights

    monkeypatch.setattr(models, "load_model", no_loading)
    model = save_model(tmp_path / "model")
    return write_config(tmp_path, [{"name": str(model), "size": "tiny"}], write_tasks(tmp_path / "tasks.csv"))


def test_plan_without_weights(cfg: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--config", str(cfg), "--dry-run", "--json", "--no-weights"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["units_total"] == 3 + 3 + 9 and plan["units_cached"] == 0
    assert plan["unfingerprinted"] == [str(cfg.parent / "model")]


def test_limits_refuse_before_any_model_loads(cfg: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "limits.yaml").write_text("max_units: 14\n")
    monkeypatch.setenv("TASKSPACE_LIMITS", str(tmp_path / "limits.yaml"))
    assert main(["run", "--config", str(cfg), "--dry-run"]) == 2  # load_model would raise AssertionError
    err = capsys.readouterr().err
    assert "15 units" in err and "max_units = 14" in err and "TASKSPACE_LIMITS" in err


def test_the_apps_plan_call_never_loads_weights(cfg: Path, tmp_path: Path) -> None:
    """jobs.plan is what "Show the plan" runs inside a page request: an unknown model stays unloaded."""
    import yaml

    from precompute import jobs

    plan = jobs.plan(yaml.safe_load(cfg.read_text()), tmp_path / "cache")
    assert plan["unfingerprinted"] == [str(tmp_path / "model")] and plan["units_cached"] == 0
    assert not (tmp_path / "cache" / "models" / "fingerprints.json").exists()  # load_model would write it
