"""Model-name and path checks of the Run page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskspace_app.validation import check_local_dir, check_model_name, check_revision, check_set_name


def test_names() -> None:
    assert check_model_name("smollm2-135m") is None
    assert check_model_name("EleutherAI/pythia-70m") is None
    assert check_model_name("") is not None
    assert "remote code" in check_model_name("x/y --trust_remote_code")
    assert check_model_name("a b") is not None
    assert check_model_name("not a/valid/name") is not None
    assert check_revision("step1000") is None and check_revision("bad rev") is not None
    assert check_set_name("my_pairs-1") is None and check_set_name("../evil") is not None


def test_local_folder_with_custom_code_refused(tmp_path: Path) -> None:
    m = tmp_path / "model"
    m.mkdir()
    (m / "config.json").write_text(json.dumps({"model_type": "x", "auto_map": {"AutoModel": "x.Y"}}))
    assert "custom" in check_model_name(str(m))
    (m / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    assert check_model_name(str(m)) is None
    assert "no such folder" in check_model_name(str(tmp_path / "missing"))


def test_server_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    allowed = tmp_path / "models"
    (allowed / "gpt").mkdir(parents=True)
    monkeypatch.setenv("TASKSPACE_SERVER_MODE", "1")
    monkeypatch.setenv("TASKSPACE_ALLOWED_MODEL_DIRS", f"{allowed}:/nonexistent")
    assert check_model_name(str(allowed / "gpt")) is None
    assert "allowed" in check_model_name(str(tmp_path))
    assert "allowed" in check_model_name(str(allowed / ".." / ".."))  # no escape by '..'
    assert check_local_dir("/etc") is not None
    assert "allow-list" in check_model_name("EleutherAI/pythia-70m")  # hub names only from the allow-list
    allow = tmp_path / "allow.yaml"
    allow.write_text("models: [EleutherAI/pythia-70m]\n")
    monkeypatch.setenv("TASKSPACE_ALLOWLIST", str(allow))
    assert check_model_name("EleutherAI/pythia-70m") is None
    monkeypatch.setenv("TASKSPACE_SERVER_MODE", "0")
    assert check_local_dir("/etc") is None
