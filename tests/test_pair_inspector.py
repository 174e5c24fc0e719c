"""``precompute pairs`` on a tiny model after a real tiny run, and the Pair inspector page on that cache."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from precompute import jobs
from precompute.cli import main
from taskspace_core.store import Store
from tests.tiny_runs import save_model, write_config, write_tasks

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "taskspace_app" / "views" / "inspect.py")


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory):
    """A tiny run (2 tasks, n_tune = n_eval = 8), then one inspection tuned on the other task."""
    tmp = tmp_path_factory.mktemp("inspect")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TASKSPACE_CACHE", str(tmp / "cache"))
        model = save_model(tmp / "tiny", seed=5)
        tasks = write_tasks(tmp / "tasks.csv", 2)
        assert main(["run", "--config", str(write_config(tmp, [{"name": str(model)}], tasks)), "--quiet"]) == 0
        n_ftgd = len(list(Store().entries("ftgd")))
        out = tmp / "pairs.csv"
        args = ["pairs", "--model", str(model), "--tasks", f"file:{tasks}", "--task", "sva_plural"]
        assert main([*args, "--tuned-on", "sva_singular", "--out", str(out)]) == 0
        assert len(list(Store().entries("ftgd"))) == n_ftgd  # the run's cached FTGD unit was applied, none computed
        yield {"tmp": tmp, "model": model, "tasks": tasks, "csv": out, "args": args}


def _unit(kind: str, **meta: str) -> dict:
    store = Store()
    rec = next(r for r in store.entries(kind) if all(r.get(k) == v for k, v in meta.items()))
    return store.require(rec["key"])


def test_cli_csv_is_sorted_by_margin_aligned_at_the_divergence_and_matches_the_run(filled, monkeypatch, capsys):
    monkeypatch.setenv("TASKSPACE_CACHE", str(filled["tmp"] / "cache"))
    df = pd.read_csv(filled["csv"], keep_default_na=False, na_values=[""])
    per_pair = df.groupby("rank").first()
    assert len(per_pair) == 8  # the run's eval split (its probe config came with its FTGD unit)
    assert (np.diff(per_pair["margin"].to_numpy()) >= 0).all()
    for _, rows in df.groupby("rank"):
        shared, diff = rows[~rows["differs"]], rows[rows["differs"]]
        assert (shared["position"] < 0).all() and (shared["token_good"] == shared["token_bad"]).all()
        assert diff["position"].iloc[0] == 0 and diff["token_good"].iloc[0] != diff["token_bad"].iloc[0]
        for suffix in ("", "_after"):
            total = np.nansum(diff[f"logp_good{suffix}"]) - np.nansum(diff[f"logp_bad{suffix}"])
            assert total == pytest.approx(rows[f"margin{suffix}"].iloc[0], abs=1e-6)
    # the same numbers as the runner's own units: base margins, and transfer margins after tuning
    base = _unit("base", task="sva_plural")["margins"]
    transfer = _unit("transfer", task="sva_singular", other="sva_plural")["margins"]
    np.testing.assert_allclose(np.sort(per_pair["margin"]), np.sort(base), atol=1e-4)
    np.testing.assert_allclose(np.sort(per_pair["margin_after"]), np.sort(transfer), atol=1e-4)
    assert np.abs(per_pair["margin_after"] - per_pair["margin"]).max() > 1e-6  # the tuning changed something
    capsys.readouterr()
    assert main([*filled["args"], "--tuned-on", "sva_singular"]) == 0
    assert "cache hit" in capsys.readouterr().out


def test_cli_without_cached_ftgd_tunes_with_the_default_config(filled, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TASKSPACE_CACHE", str(filled["tmp"] / "cache"))
    three = write_tasks(tmp_path / "three.csv", 3)  # det_noun was not in the run
    n_ftgd = len(list(Store().entries("ftgd")))
    args = ["pairs", "--model", str(filled["model"]), "--tasks", f"file:{three}", "--task", "sva_plural"]
    assert main([*args, "--tuned-on", "det_noun", "--limit", "3"]) == 0
    assert "tuning on 'det_noun'" in capsys.readouterr().out
    assert len(list(Store().entries("ftgd"))) == n_ftgd + 1
    assert main([*args, "--task", "missing"]) == 2


def test_view_draws_the_cached_inspection_without_torch(filled):
    """In a fresh interpreter: the page renders the surprisal figure and never imports torch."""
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({PAGE!r}, default_timeout=60).run()\n"
        "assert not at.exception, [e.value for e in at.exception]\n"
        "assert len(at.get('plotly_chart')) == 1, 'no figure'\n"
        "at.number_input(key='inspect_rank').set_value(8).run()\n"
        "assert not at.exception and len(at.get('plotly_chart')) == 1\n"
        "assert 'torch' not in sys.modules, 'the page imported torch'\n"
    )
    env = {**__import__("os").environ, "TASKSPACE_CACHE": str(filled["tmp"] / "cache")}
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]


def test_view_computes_a_missing_inspection_as_a_background_job(filled, monkeypatch):
    cache = filled["tmp"] / "cache"
    monkeypatch.setenv("TASKSPACE_CACHE", str(cache))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    before = len(list(Store().entries("pairs")))
    at.selectbox(key="inspect_task").set_value("sva_singular").run()
    at.number_input(key="inspect_limit").set_value(3).run()
    assert any("--task=sva_singular" in c.value and "--limit=3" in c.value for c in at.code)
    at.button(key="inspect_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    t0 = time.time()
    while time.time() - t0 < 180 and not any(s.final for s in jobs.list_jobs(cache)):
        time.sleep(0.5)
    states = [s.state for s in jobs.list_jobs(cache)]
    assert states == ["done"], (states, [jobs.log_tail(s.id, cache, user=jobs_admin()) for s in jobs.list_jobs(cache)])
    assert len(list(Store().entries("pairs"))) == before + 1


def jobs_admin():
    from taskspace_app.auth import LOCAL

    return LOCAL


def test_view_on_an_empty_cache_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "No pair inspection is cached yet" in at.info[0].value
    assert any(c.value.startswith("python -m precompute pairs") for c in at.code)
    assert len(at.get("plotly_chart")) == 0
