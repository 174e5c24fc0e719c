"""Uncertainty stored with a space (METHODS s6): margins, intervals and reliability from a real tiny run,
the tuning-halves switch, the codec, old spaces, the export and the views that show them."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from precompute.cli import main
from precompute.config import load_config
from precompute.runner import build_plan
from taskspace_core import codec, limits, spaces
from taskspace_core import space_uncertainty as unc
from taskspace_core.results import load_space
from taskspace_core.spaces import PairMargins
from taskspace_core.store import Store
from tests.test_app import charts, ok, page
from tests.tiny_runs import save_model, write_config, write_tasks

HALF_KINDS = ("ftgd_half1", "ftgd_half2", "transfer_half1", "transfer_half2")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A plain run (A), then the same run with ``probe.tuning_halves`` (B) on one cache."""
    tmp = tmp_path_factory.mktemp("unc")
    mp = pytest.MonkeyPatch()
    mp.setenv("TASKSPACE_CACHE", str(tmp / "cache"))
    try:
        model = save_model(tmp / "model")
        csv = write_tasks(tmp / "tasks.csv", 3)
        entry = [{"name": str(model), "size": "tiny", "step": 10}]
        cfg_a = write_config(tmp, entry, csv, name="plain")
        assert main(["run", "--config", str(cfg_a), "--quiet"]) == 0
        raw = yaml.safe_load(cfg_a.read_text())
        raw["name"], raw["probe"]["tuning_halves"] = "halves", True
        cfg_b = tmp / "halves.yaml"
        cfg_b.write_text(yaml.safe_dump(raw))
        plan_b = build_plan(load_config(cfg_b), Store(tmp / "cache"))
        counts_before = plan_b.counts()
        assert main(["run", "--config", str(cfg_b), "--quiet"]) == 0
    finally:
        mp.undo()
    return {"tmp": tmp, "cache": tmp / "cache", "a": cfg_a, "b": cfg_b, "counts_b": counts_before}


def _space_and_units(cache: Path, cfg: Path) -> tuple:
    store = Store(cache)
    plan = build_plan(load_config(cfg), store)
    mp = plan.models[0]
    units = {(u.kind, u.task, u.other): store.require(u.key) for u in mp.units}
    return load_space(store, mp.space_key), units, plan.taskset.names


def _margins_of(units: dict, names: list[str], transfer_kind: str = "transfer") -> PairMargins:
    return PairMargins.from_arrays(
        [units[("base", t, None)]["margins"] for t in names],
        [[units[(transfer_kind, i, j)]["margins"] for j in names] for i in names],
    )


def test_stored_intervals_equal_the_bootstrap_of_the_unit_margins(run: dict) -> None:
    sp, units, names = _space_and_units(run["cache"], run["a"])
    pm = _margins_of(units, names)
    for j in range(len(names)):
        np.testing.assert_array_equal(sp.pair_margins.base[j], pm.base[j])
        for i in range(len(names)):
            np.testing.assert_array_equal(sp.pair_margins.tuned[i][j], pm.tuned[i][j])
    boot = spaces.bootstrap_transfer(pm, metric=sp.metric, n_boot=1000, seed=0)
    u = sp.uncertainty
    assert (u["n_boot"], u["level"], u["metric"]) == (1000, 0.95, sp.metric)
    np.testing.assert_allclose(sp.T, boot.T.value, atol=1e-9)
    np.testing.assert_array_equal(u["T"]["low"], boot.T.low)
    np.testing.assert_array_equal(u["T"]["high"], boot.T.high)
    assert np.all(u["T"]["low"] <= sp.T + 1e-9) and np.all(u["T"]["high"] + 1e-9 >= sp.T)
    assert not np.allclose(u["T"]["low"], u["T"]["high"])  # a real interval, not a point
    for m in ("accuracy", "mean_margin"):
        np.testing.assert_array_equal(u["base"][m]["low"], boot.base[m].low)
        np.testing.assert_array_equal(u["base"][m]["high"], boot.base[m].high)
    assert np.isfinite(u["reliability"]["profile"]["ceiling"])
    for how in unc.TRANSFER_VIEWS:
        rel = spaces.split_half_reliability(pm, how=how, metric=sp.metric, n_splits=100, seed=0)
        assert u["reliability"][how]["ceiling"] == pytest.approx(rel.ceiling, nan_ok=True)
    assert sp.tuning_margins is None and "tuning_reliability" not in u
    assert unc.reliability_badge(sp, "profile").startswith("reliability ")
    assert unc.reliability_badge(sp, "profile").endswith("(eval-noise split-half)")


def test_tuning_halves_add_exactly_their_units_and_a_reliability(run: dict) -> None:
    n = 3
    counts = run["counts_b"]
    assert counts["base"] == {"total": n, "cached": n} and counts["transfer"] == {"total": n * n, "cached": n * n}
    assert counts["ftgd"] == {"total": n, "cached": n}
    for k in HALF_KINDS:
        assert counts[k] == {"total": n if k.startswith("ftgd") else n * n, "cached": 0}, k
    assert set(counts) == {"base", "ftgd", "transfer", *HALF_KINDS}
    total = sum(c["total"] for c in counts.values())
    assert total == limits.count_units(n, 1, ["transfer", "gradient"], "exact", tuning_halves=True)  # limits see them

    a, _, _ = _space_and_units(run["cache"], run["a"])
    b, units, names = _space_and_units(run["cache"], run["b"])
    np.testing.assert_array_equal(a.T, b.T)  # the plain units are shared
    halves = tuple(_margins_of(units, names, f"transfer_half{h}") for h in (1, 2))
    for got, want in zip(b.tuning_margins, halves, strict=True):
        np.testing.assert_array_equal(np.concatenate(got.tuned[0]), np.concatenate(want.tuned[0]))
    # two tunings on other pairs move the margins differently
    assert not np.allclose(np.concatenate(halves[0].tuned[0]), np.concatenate(halves[1].tuned[0]))
    for how in unc.TRANSFER_VIEWS:
        want = spaces.split_half_reliability(halves[0], how=how, metric=b.metric, second_tuning=halves[1], seed=0)
        got = b.uncertainty["tuning_reliability"][how]
        assert got["ceiling"] == pytest.approx(want.ceiling, nan_ok=True)
        assert got["source"] == "eval pairs and tunings"
    assert np.isfinite(b.uncertainty["tuning_reliability"]["profile"]["ceiling"])
    assert unc.reliability(b, "profile")["label"] == unc.TUNING_NOISE  # the fuller ceiling wins


def test_tune_halves_are_disjoint_halves_of_the_tune_split() -> None:
    from taskspace_core.configs import ProbeConfig, ProbeError
    from taskspace_core.probing import tune_half
    from taskspace_core.tasks import MinimalPair, Task

    task = Task("t", tuple(MinimalPair(f"good {k}", f"bad {k}") for k in range(21)))
    cfg = ProbeConfig(n_tune=9, n_eval=6)
    tune = set(task.split(9, 6)[0])
    h1, h2 = tune_half(task, cfg, 1), tune_half(task, cfg, 2)
    assert len(h1) == len(h2) == 4 and not set(h1) & set(h2) and set(h1) | set(h2) < tune
    with pytest.raises(ProbeError, match="1 or 2"):
        tune_half(task, cfg, 3)
    with pytest.raises(ProbeError, match="exact"):
        ProbeConfig(transfer="first_order", tuning_halves=True)
    assert "tuning_halves" not in ProbeConfig().key() and ProbeConfig(tuning_halves=True).key()["tuning_halves"]


def test_first_order_keeps_base_intervals_and_says_why_t_has_none() -> None:
    rng = np.random.default_rng(0)
    base = [rng.normal(size=12) for _ in range(3)]
    u = unc.compute_uncertainty(base, None, "accuracy", n_boot=200)
    assert u["T"] is None and u["note"] == unc.NO_PER_PAIR_T
    boot = spaces.bootstrap_transfer(PairMargins.from_arrays(base, [base] * 3), metric="accuracy", n_boot=200)
    np.testing.assert_array_equal(u["base"]["accuracy"]["low"], boot.base["accuracy"].low)
    assert unc.compute_uncertainty(None, None, "accuracy") is None
    assert "at least 2" in unc.compute_uncertainty([np.ones(1)] * 2, None, "accuracy")["note"]


def test_codec_round_trips_the_fields_and_packs_tuples_of_arrays(run: dict) -> None:
    sp, _, _ = _space_and_units(run["cache"], run["b"])
    back = codec.decode(codec.encode(sp))
    assert isinstance(back.pair_margins, PairMargins) and isinstance(back.tuning_margins[1], PairMargins)
    for x, y in zip(back.pair_margins.tuned, sp.pair_margins.tuned, strict=True):
        np.testing.assert_array_equal(np.concatenate(x), np.concatenate(y))
    np.testing.assert_array_equal(back.uncertainty["T"]["low"], sp.uncertainty["T"]["low"])
    assert back.uncertainty["tuning_reliability"] == sp.uncertainty["tuning_reliability"]
    ragged = (np.arange(3.0), np.arange(0.0), np.arange(5.0))
    out = codec.decode(codec.encode(ragged))
    assert isinstance(out, tuple) and [len(x) for x in out] == [3, 0, 5]
    np.testing.assert_array_equal(out[2], ragged[2])
    mixed = (np.arange(2), np.arange(2.0))  # two dtypes: one member each, as before
    assert [x.dtype for x in codec.decode(codec.encode(mixed))] == [np.int64, np.float64]
    with pytest.raises(codec.CodecError, match="lengths"):
        codec.decode(_edit_tree(codec.encode(ragged), lambda t: {**t, "n": [3, 0, 4]}))


def _edit_tree(blob: bytes, edit) -> bytes:  # noqa: ANN001 - a test helper
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        members = {k: z[k] for k in z.files}
    tree = edit(json.loads(members["__tree__"].tobytes()))
    members["__tree__"] = np.frombuffer(json.dumps(tree).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **members)
    return buf.getvalue()


def test_a_space_stored_before_uncertainty_still_loads(run: dict) -> None:
    sp, _, _ = _space_and_units(run["cache"], run["a"])

    def drop(tree: dict) -> dict:
        for name in ("pair_margins", "tuning_margins", "uncertainty"):
            tree["v"].pop(name)
        return tree

    old = codec.decode(_edit_tree(codec.encode(sp), drop))
    assert old.pair_margins is None and old.tuning_margins is None and old.uncertainty is None
    np.testing.assert_array_equal(old.T, sp.T)
    assert unc.t_interval(old) is None and unc.base_interval(old, "accuracy") is None
    assert unc.reliability_badge(old, "profile") == ""
    H = spaces.HypothesisSpace.from_labels("category", old.names, old.labels("category"))
    row = unc.fit_row(old, "profile", spaces.symmetrise(old.T), H, 99)
    assert np.isnan(row["spearman_ci_lo"]) and np.isnan(row["ceiling"]) and np.isfinite(row["spearman"])


def test_export_carries_intervals_fits_and_reliability(run: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_CACHE", str(run["cache"]))
    out = run["tmp"] / "export"
    assert main(["export", "--config", str(run["b"]), "--out", str(out), "--permutations", "99"]) == 0
    sp, _, _ = _space_and_units(run["cache"], run["b"])
    (d,) = [p for p in out.iterdir() if p.is_dir()]
    cells = pd.read_csv(d / "T_intervals.csv")
    n = len(sp.names)
    assert list(cells.columns) == ["tuned", "evaluated", "T", "T_lo", "T_hi"] and len(cells) == n * n
    row = cells[(cells.tuned == sp.names[0]) & (cells.evaluated == sp.names[2])].iloc[0]
    assert row["T"] == pytest.approx(sp.T[0, 2], rel=1e-5)
    assert row["T_lo"] == pytest.approx(sp.uncertainty["T"]["low"][0, 2], rel=1e-5)
    assert row["T_hi"] == pytest.approx(sp.uncertainty["T"]["high"][0, 2], rel=1e-5)
    tasks = pd.read_csv(d / "tasks.csv")
    for m in ("accuracy", "mean_margin"):
        np.testing.assert_allclose(tasks[f"base_{m}_lo"], sp.uncertainty["base"][m]["low"])
        np.testing.assert_allclose(tasks[f"base_{m}_hi"], sp.uncertainty["base"][m]["high"])
        assert (tasks[f"base_{m}_lo"] <= tasks[f"base_{m}"] + 1e-9).all()
    stats = pd.read_csv(d / "statistics.csv")
    prof = stats[(stats.view == "T_profile") & (stats.level == "category")].iloc[0]
    assert prof["spearman_ci_lo"] <= prof["spearman"] <= prof["spearman_ci_hi"]
    assert prof["ceiling"] == pytest.approx(sp.uncertainty["tuning_reliability"]["profile"]["ceiling"])
    assert prof["ceiling_source"] == unc.TUNING_NOISE and 0 < prof["mantel_p"] <= 1
    g = stats[stats.view == "G"].iloc[0]
    assert np.isnan(g["spearman_ci_lo"]) and np.isnan(g["ceiling"])  # no per-pair values behind G
    rel = pd.read_csv(d / "reliability.csv")
    assert set(zip(rel.view, rel.noise, strict=True)) == {
        (v, s) for v in unc.TRANSFER_VIEWS for s in (unc.EVAL_NOISE, unc.TUNING_NOISE)
    }
    summary = json.loads((d / "statistics.json").read_text())["summary"]
    assert len(summary["reliability"]) == 4


def _figures(at) -> list[dict]:  # noqa: ANN001 - an AppTest
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_views_show_badge_hover_interval_and_whiskers(run: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_CACHE", str(run["cache"]))
    a, _, _ = _space_and_units(run["cache"], run["a"])  # A and B share their units: one T, one interval
    at = ok(page("space", matrix="T", order="file"))
    badge = re.compile(r"reliability -?\d\.\d\d \(eval(- and tuning)?-noise split-half\)")
    assert any(badge.search(m.value) for m in at.markdown), [m.value for m in at.markdown]
    heat, bars = _figures(at)[:2]
    hover = [t for t in heat["data"] if t["type"] == "heatmap" and t.get("customdata")][0]
    lo, hi = a.uncertainty["T"]["low"], a.uncertainty["T"]["high"]
    assert hover["customdata"][0][1] == f"<br>95% interval [{lo[0, 1]:.3f}, {hi[0, 1]:.3f}]"
    base = bars["data"][0]
    assert base["type"] == "bar" and len(base["error_y"]["array"]) == 3
    assert "T with 95% intervals (CSV)" in [b.label for b in at.download_button]

    at = ok(page("hypotheses", perm="999", levels="category", matrix="profile"))
    fits = at.dataframe[0].value
    assert {"spearman_ci_lo", "spearman_ci_hi", "ceiling"} <= set(fits.columns)
    assert np.isfinite(fits["spearman_ci_lo"]).all()
    bar = _figures(at)[0]["data"][0]
    assert bar["type"] == "bar" and len(bar["error_y"]["arrayminus"]) == len(fits) == 2  # runs A and B
    np.testing.assert_allclose(bar["error_y"]["arrayminus"], fits["spearman"] - fits["spearman_ci_lo"], atol=1e-12)
    np.testing.assert_allclose(bar["error_y"]["array"], fits["spearman_ci_hi"] - fits["spearman"], atol=1e-12)
    assert any("of a possible" in m.value for m in at.markdown)
    assert charts(at) >= 1

    at = ok(page("tree", matrix="profile", level="category"))
    assert any("95% bootstrap interval over eval pairs [" in c.value for c in at.caption)


def test_run_page_switch_writes_tuning_halves_and_refuses_first_order(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "taskspace_app/views/run.py"), default_timeout=60)
    at = ok(at.run())
    assert "tuning_halves" not in at.code[0].value  # off: configs stay as they were
    at.toggle(key="tuning_halves").set_value(True).run()
    assert "tuning_halves: true" in at.code[0].value and not at.error
    at.selectbox(key="qp_transfer").set_value("first_order").run()
    assert any("needs transfer: exact" in e.value for e in at.error), [e.value for e in at.error]
