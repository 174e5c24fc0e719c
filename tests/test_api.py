"""The notebook API: README's example runs as written on a tiny random-init model, through the CLI's cache."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from taskspace_core import api
from taskspace_core.results import list_spaces
from taskspace_core.store import Store
from tests.tiny_models import tiny_loaded_model

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs_on_a_tiny_model(tmp_path, monkeypatch, capsys, one_torch_thread) -> None:
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    tiny = tiny_loaded_model("llama", seed=1)
    monkeypatch.setattr(api, "load_model", lambda *a, **k: tiny)  # the example's only change: the model
    code = readme_example()
    assert len(code.strip().splitlines()) <= 12
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    out = capsys.readouterr().out
    space = scope["space"]
    assert space.names == ["anaphor_number", "sva_verb_changes", "demonstrative_noun_number"]
    assert {"T", "profile", "G", "J", "R"} <= set(space.matrices) and "R" in out
    fit = space.fit("category")
    assert set(fit) >= {"T_profile", "G", "J", "R"} and all("spearman" in f for f in fit.values())
    margins = scope["ts"].score_pairs(tiny, scope["tasks"]["anaphor_number"]).margins
    assert np.isfinite(margins).all()
    # the same cache as the CLI: the space is listed for the app, and a rerun computes nothing
    with Store(tmp_path / "cache") as store:
        before = {r["key"] for r in store.entries()}
        assert [r.series for r in list_spaces(store)] == ["notebook"]
    again = api.run_probe(tiny, scope["tasks"], methods=["transfer", "gradient", "representation"],
                          probe={"n_tune": 16, "n_eval": 16}, ftgd={"steps": 2, "mask_pairs": 8})  # fmt: skip
    with Store(tmp_path / "cache") as store:
        assert {r["key"] for r in store.entries()} == before
    np.testing.assert_array_equal(again.matrix("R"), space.matrix("R"))


def test_importing_the_api_imports_no_torch() -> None:
    code = "import sys, taskspace_core as ts; ts.TaskSpace; sys.exit(3 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
