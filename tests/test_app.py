"""Every page of the Streamlit app on a pre-filled cache (AppTest: no browser)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from precompute import jobs
from tests.fixtures_spaces import prefill_cache

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["space", "map", "tree", "overlap", "hypotheses", "pairs", "run", "place"]


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cache")
    prefill_cache(d)
    return d


@pytest.fixture()
def cache(filled: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TASKSPACE_CACHE", str(filled))
    return filled


def page(name: str, **params: str) -> AppTest:
    at = AppTest.from_file(
        str(ROOT / ("app.py" if name == "home" else f"taskspace_app/views/{name}.py")), default_timeout=60
    )
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def labels(at: AppTest, kind: str) -> list[str]:
    return [w.label for w in getattr(at, kind)]


def test_home_lists_cache(cache: Path) -> None:
    at = ok(page("home"))
    assert [m.value for m in at.metric][:2] == ["6", "6"]  # 6 spaces of 6 checkpoints
    df = at.dataframe[0].value
    assert set(df["step"]) == {0, 1000, 2000} and set(df["task set"]) == {"synthetic-8"}
    assert len(at.get("page_link")) == 8
    ok(at.run())  # warm rerun (its time is measured in benchmarks/bench_app.py, not asserted here)
    assert [m.value for m in at.metric][:2] == ["6", "6"]


def test_navigation_switches_pages(cache: Path) -> None:
    at = ok(page("home"))
    at.switch_page("taskspace_app/views/tree.py").run()
    ok(at)
    assert charts(at) == 1 and at.metric[0].label == "ARI vs category"


@pytest.mark.parametrize("name", PAGES)
def test_views_on_empty_cache_explain_what_to_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path))
    at = ok(page(name))
    if name in ("space", "map", "tree", "overlap", "hypotheses", "place"):
        assert "Nothing to show yet" in at.info[0].value
        assert charts(at) == 0


def test_home_empty_offers_default_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path))
    at = ok(page("home"))
    assert "cache is empty" in at.info[0].value
    assert "Run the default analysis" in [s.value for s in at.subheader]


def test_space_page_and_query_roundtrip(cache: Path) -> None:
    at = ok(page("space", model="smollm2-135m@step1000", rev="step1000", matrix="G", order="file"))
    assert charts(at) == 1
    assert _qp(at, "model") == "smollm2-135m@step1000" and _qp(at, "rev") == "step1000"
    box = at.selectbox(key="qp_model")
    assert box.options[box.index] == "smollm2-135m@step1000 (135M · step 1000)"
    assert at.selectbox(key="qp_matrix").value == "G"
    assert at.radio(key="qp_order").value == "file"
    assert "Transfer estimate" not in labels(at, "radio")  # only for T-based views
    at.selectbox(key="qp_matrix").set_value("T").run()
    ok(at)
    assert _qp(at, "matrix") == "T"
    assert at.radio(key="qp_estimate").value == "exact"
    assert len(at.download_button) == 2 and labels(at, "button") == ["make PNG"]


def _qp(at: AppTest, key: str) -> str:
    v = at.query_params[key]
    return v[0] if isinstance(v, list) else v


def test_png_failure_is_a_message_not_a_traceback(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from taskspace_app import downloads

    def boom(fig: object) -> bytes:
        raise RuntimeError("PNG export failed (no browser)")

    monkeypatch.setattr(downloads, "figure_png", boom)
    at = ok(page("tree"))
    at.button(key="tree_png_make").click().run()
    ok(at)
    assert any("PNG export failed" in w.value for w in at.warning)


def test_map_slider_over_checkpoints_and_sizes(cache: Path) -> None:
    at = ok(page("map"))
    fig = at.get("plotly_chart")[0].proto.spec
    assert '"frames"' in fig and "step 2000" in fig
    at = ok(page("map", along="sizes", step="1000", level="field"))
    assert _qp(at, "along") == "sizes" and _qp(at, "step") == "1000"
    assert "360M" in at.get("plotly_chart")[0].proto.spec


def test_tree_shows_ari(cache: Path) -> None:
    at = ok(page("tree", level="field"))
    assert charts(at) == 1
    assert at.metric[0].label == "ARI vs field"
    assert any("ARI permutation p" in c.value for c in at.caption)  # ARI's own p, not the Mantel p
    assert any("n = 8 tasks" in c.value for c in at.caption)


def test_overlap_tabs(cache: Path) -> None:
    at = ok(page("overlap", matrix="J"))
    assert charts(at) == 1  # lazy tabs: only the open one (the heatmap) is built
    for tab, n in (("Where masks live", 1), ("Across sizes and checkpoints", 2)):  # small multiples + distributedness
        at.session_state["overlap_tab"] = tab
        ok(at.run())
        assert charts(at) == n, tab
        if tab == "Across sizes and checkpoints":  # the distributedness finding, tested per size
            gap = next(m.value for m in at.markdown if "Does the gap grow?" in m.value)
            assert gap.count("within - between lift") == 2 and "p = " in gap
        if tab == "Where masks live":
            assert at.selectbox(key="qp_task").value == "anaphor_gender"


def test_hypotheses(cache: Path) -> None:
    at = ok(page("hypotheses", perm="999", levels="category,field"))
    assert charts(at) == 3
    fits = at.dataframe[0].value
    assert set(fits["level"]) == {"category", "field"} and len(fits) == 12
    assert {"spearman", "mantel_p", "ari", "ari_p", "within_minus_between", "n_tasks"} <= set(fits.columns)
    assert any("n = 8 tasks" in c.value for c in at.caption)
    # the three findings of the synthetic series (2 sizes x 3 steps), each with its interval and p
    report = next(m.value for m in at.markdown if "(1) by size" in m.value)
    assert report.count("(2) ") == 2 and report.count("(3) ") == 2 and "p = " in report
    stab = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert all(t["error_y"]["array"] for t in stab["data"])  # whiskers on every stability line


def test_pairs_page_paradigm_editor(cache: Path) -> None:
    at = ok(page("pairs"))
    assert labels(at, "text_area") == ["Paradigm (YAML)"]
    at.text_area(key="paradigm_text").set_value("- name: [broken").run()
    at.button(key="paradigm_preview").click().run()
    ok(at)
    assert at.error and "could not be generated" in at.error[0].value


def test_pairs_page_save_conflict_asks_for_new_name_or_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path))
    at = ok(page("pairs"))
    at.button(key="paradigm_preview").click().run()
    at.button(key="para_save").click().run()
    name = at.text_input(key="para_name").value
    assert any(f"`{name}`" in s.value for s in ok(at).success)
    at.number_input(key="paradigm_n").set_value(20).run()
    at.button(key="paradigm_preview").click().run()
    at.button(key="para_save").click().run()  # same name, other pairs
    assert "choose a new name or replace" in ok(at).warning[0].value and not at.success
    at.button(key="para_replace").click().run()
    assert any(f"`{name}@v2`" in s.value for s in ok(at).success)
    assert sorted(p.name for p in (tmp_path / "tasksets").glob("*.csv")) == [f"{name}.csv", f"{name}@v2.csv"]


def test_run_page_refuses_remote_code_and_starts_a_job(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "runner.py"
    script.write_text(
        "import json,sys,time\n"
        "json.dump({'state':'done','done':1,'total':1,'by_type':{},'updated':time.time()}, open(sys.argv[1],'w'))\n"
    )
    monkeypatch.setattr(jobs, "runner_command", lambda cfg, prog: [sys.executable, str(script), str(prog)])
    monkeypatch.setattr(
        jobs,
        "plan",
        lambda config, cache=None, timeout=0: {
            "units_total": 10,
            "units_cached": 4,
            "units_todo": 6,
            "by_type": {"tune": {"total": 2, "cached": 0}},
            "estimated_seconds": 75,
        },
    )
    at = ok(page("run"))
    at.text_input(key="add_name").set_value("owner/model?trust_remote_code=1")
    at.button(key="add_model").click().run()
    assert "remote code" in at.error[0].value
    at.button(key="plan").click().run()
    ok(at)
    assert [m.value for m in at.metric] == ["10", "4", "6", "1 min 15 s"]
    at.button(key="start").click().run()
    ok(at)
    t0 = time.time()
    while time.time() - t0 < 10 and not any(s.state == "done" for s in jobs.list_jobs(cache)):
        time.sleep(0.1)
    assert any(s.state == "done" for s in jobs.list_jobs(cache))


def test_run_page_server_mode_refuses_outside_paths(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKSPACE_SERVER_MODE", "1")
    monkeypatch.setenv("TASKSPACE_ALLOWED_MODEL_DIRS", str(tmp_path / "models"))
    at = ok(page("run"))
    at.text_input(key="add_name").set_value("/etc")
    at.button(key="add_model").click().run()
    assert "allowed directories" in at.error[0].value


def test_run_page_takes_saved_set_from_url(cache: Path) -> None:
    sets = cache / "tasksets"
    sets.mkdir(exist_ok=True)
    (sets / "mine.csv").write_text("sentence_good,sentence_bad,task\na b,b a,t\n")
    at = ok(page("run", sets="mine"))
    assert at.multiselect(key="qp_sets").value == ["mine"]
    assert any("set:mine" in c.value for c in at.code)


def test_csv_exports_neutralise_formulas() -> None:
    import pandas as pd

    from taskspace_app import downloads

    df = pd.DataFrame({"task": ["=HYPERLINK(1)", "+x", "@y", "-z", "ok"], "value": [-0.5, 1.0, 2.0, 3.0, 4.0]})
    df.index = ["=a", "b", "c", "d", "e"]
    text = downloads.csv_bytes(df, index=True).decode()
    assert "'=HYPERLINK(1)" in text and "'+x" in text and "'@y" in text and "'-z" in text
    assert "'=a" in text and ",-0.5" in text  # numbers stay numbers


def test_app_never_imports_torch() -> None:
    """The pages only read results: nothing they import may pull in torch (a model never runs in the app)."""
    import subprocess

    mods = [
        "taskspace_app.reading",
        "taskspace_app.widgets",
        "taskspace_app.pickers",
        "taskspace_app.downloads",
        "taskspace_app.jobs_panel",
        "taskspace_app.validation",
        "taskspace_core.plots",
        "taskspace_core.spaces",
        "precompute.jobs",
        "taskspace_core.pairfiles",
        "taskspace_core.builtin",
        "taskspace_core.results",
    ]
    code = f"import sys; import {', '.join(mods)}; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
    for view in (ROOT / "taskspace_app" / "views").glob("*.py"):
        assert "import torch" not in view.read_text()
