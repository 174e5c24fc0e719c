"""No torch where none is needed: every page's imports, the configs and a cache-hit ``precompute run``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from precompute.cli import main
from tests.tiny_runs import save_model, write_config, write_tasks

ROOT = Path(__file__).resolve().parents[1]
VIEWS = sorted((ROOT / "taskspace_app" / "views").glob("*.py"))


def import_lines(path: Path) -> list[str]:
    """Every import statement of a page, at any depth of the file (lazy ones too), as source."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        ast.unparse(n)
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom) and not getattr(n, "level", 0)
    ]


def torch_after(code: str, env: dict | None = None) -> bool:
    probe = f"{code}\nimport sys; sys.exit(3 if 'torch' in sys.modules else 0)"
    res = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode in (0, 3), res.stderr[-2000:]
    return res.returncode == 3


@pytest.mark.parametrize("view", VIEWS, ids=lambda p: p.stem)
def test_a_page_imports_no_torch(view: Path) -> None:
    lines = [*import_lines(view), "import taskspace_core.configs, taskspace_core.methods"]
    assert any("taskspace" in ln for ln in lines)
    assert not torch_after("\n".join(lines)), f"{view.name} pulls in torch through one of {lines}"


def test_a_cache_hit_run_imports_no_torch(tmp_path, monkeypatch, one_torch_thread) -> None:
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    model = save_model(tmp_path / "model")
    cfg = write_config(tmp_path, [{"name": str(model), "size": "tiny", "step": 1}], write_tasks(tmp_path / "t.csv", 2))
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0  # computes (and imports torch here, in pytest)
    import os

    run = f"from precompute.cli import main\nassert main(['run', '--config', {str(cfg)!r}, '--quiet']) == 0"
    env = {**os.environ, "TASKSPACE_CACHE": str(tmp_path / "cache")}
    assert not torch_after(run, env)
    assert not torch_after(run.replace("'--quiet'", "'--dry-run', '--json'"), env)
