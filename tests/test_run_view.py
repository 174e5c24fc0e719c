"""The Run page: widgets start from configs/default.yaml, methods come from the registry, and the
config it builds is validated on every change with the message beside the widget."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from taskspace_core import methods
from taskspace_core.configs import default_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def run_page(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    at = AppTest.from_file(str(ROOT / "taskspace_app" / "views" / "run.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_widgets_start_from_the_default_config(run_page: AppTest) -> None:
    raw = default_config()
    at = run_page
    assert at.number_input(key="n_eval").value == raw["probe"]["n_eval"]
    assert at.number_input(key="f_steps").value == raw["ftgd"]["steps"]
    assert at.number_input(key="f_lr").value == pytest.approx(raw["ftgd"]["lr"])
    assert at.multiselect(key="qp_methods").value == raw["methods"]
    assert at.multiselect(key="qp_methods").options == list(methods.config_names())
    assert "builtin:" + ",".join(at.multiselect(key="qp_builtin").value) == raw["tasks"][0]
    assert not at.error


def test_a_bad_switch_is_named_beside_its_widget(run_page: AppTest) -> None:
    at = run_page
    at.number_input(key="f_frac").set_value(0.0).run()
    assert [e.value for e in at.error] == ["ftgd: mask\\_fraction must be in (0, 1\\], not 0.0"]
    assert any("Fix the switches" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "start"]  # nothing to start until it is fixed
    at.number_input(key="f_frac").set_value(0.02).run()
    assert not at.error and [b for b in at.button if b.key == "start"]


def test_a_saved_set_sent_from_your_pairs_is_the_only_task_source(tmp_path, monkeypatch) -> None:
    """ "Use it on the Run page" selects only that set, not the default built-in paradigms beside it."""
    import pandas as pd

    from taskspace_core import tasksets
    from taskspace_core.pairfiles import read_pair_file

    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    rows = [
        {"sentence_good": f"The cat {i} sleeps.", "sentence_bad": f"The cat {i} sleep.", "task": "mine"}
        for i in range(12)
    ]
    ts, report = read_pair_file(pd.DataFrame(rows).to_csv(index=False).encode(), filename="mine.csv")
    assert ts is not None, report
    tasksets.save(ts, "my_set", tmp_path / "cache", replace=False)
    at = AppTest.from_file(str(ROOT / "taskspace_app" / "views" / "run.py"), default_timeout=60)
    at.query_params["sets"] = "my_set"  # what the Your pairs button passes to st.switch_page
    at.query_params["builtin"] = ""
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="qp_builtin").value == []
    assert at.multiselect(key="qp_sets").value == ["my_set"]
    source = (ROOT / "taskspace_app" / "views" / "pairs.py").read_text()
    assert 'query_params={"sets": base, "builtin": ""}' in source  # the button passes exactly these
