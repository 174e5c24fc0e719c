"""The method registry: a toy method added from a test-local module runs, caches, assembles and
exports; representation similarity equals a plain computation; configs round-trip and name bad fields."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from precompute.cli import main
from taskspace_core import methods
from taskspace_core.configs import ConfigError, ProbeConfig, config_errors, default_config, parse_config
from taskspace_core.results import list_spaces, load_space, symmetric_views
from taskspace_core.store import Store
from tests import toy_method
from tests.tiny_runs import save_model, write_config, write_tasks


@pytest.fixture()
def tiny(tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    model_dir = save_model(tmp_path / "model")
    return tmp_path, model_dir, write_tasks(tmp_path / "tasks.csv")


def config(tmp: Path, model_dir: Path, csv: Path, methods_on: list[str], name: str = "m") -> Path:
    path = write_config(tmp, [{"name": str(model_dir), "size": "tiny", "step": 1}], csv, name=name)
    raw = yaml.safe_load(path.read_text())
    raw["methods"] = methods_on
    path.write_text(yaml.safe_dump(raw))
    return path


def only_space(tmp: Path):
    store = Store(tmp / "cache")
    (rec,) = list_spaces(store)
    return load_space(store, rec["key"])


@pytest.fixture()
def toy():
    toy_method.register()
    toy_method.CALLS.clear()
    yield toy_method
    toy_method.unregister()


def test_a_toy_method_runs_caches_assembles_and_exports(tiny, toy, capsys):
    tmp, model_dir, csv = tiny
    cfg = config(tmp, model_dir, csv, ["toy"])
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    assert sorted(toy.CALLS) == ["det_noun", "sva_plural", "sva_singular"]
    kinds = {r["kind"] for r in Store(tmp / "cache").entries()}
    assert kinds == {"base", "toy_len", "space"}  # no FTGD: the toy method reads none
    sp = only_space(tmp)
    lengths = {}
    from taskspace_core.sources import load_many

    for t in load_many([f"file:{csv}"]):
        pairs = t.split(8, 8)[1]
        lengths[t.name] = np.mean([len(p.good.split()) for p in pairs])
    want = np.array([[-abs(lengths[a] - lengths[b]) for b in sp.names] for a in sp.names])
    np.testing.assert_allclose(sp.matrices["TOY"], want)
    assert "TOY" in symmetric_views(sp)
    capsys.readouterr()
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0  # a cache hit computes nothing
    assert len(toy.CALLS) == 3 and "cache hit" in capsys.readouterr().out
    out = tmp / "export"
    assert main(["export", "--config", str(cfg), "--out", str(out), "--permutations", "9"]) == 0
    (model_out,) = [p for p in out.iterdir() if p.is_dir()]
    exported = pd.read_csv(model_out / "toy_lengths.csv", index_col=0)
    np.testing.assert_allclose(exported.to_numpy(), want, rtol=1e-5)
    fits = json.loads((model_out / "statistics.json").read_text())["fits"]
    assert {f["view"] for f in fits} == {"TOY"}


def plain_last_token_states(lm, text: str) -> np.ndarray:
    """One sentence alone (no batch, no padding): [layers, hidden] at its last token."""
    import torch

    ids = [lm.bos_id, *lm.tokenizer(text, add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        out = lm.model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    return np.stack([h[0, -1].double().numpy() for h in out.hidden_states[1:]])


def test_representation_similarity_equals_a_plain_computation(tiny):
    tmp, model_dir, csv = tiny
    cfg = config(tmp, model_dir, csv, ["representation"])
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    sp = only_space(tmp)
    assert set(sp.matrices) == {"R", "R_layers"} and sp.T is None and sp.G is None
    from taskspace_core.models import ModelSpec, load_model
    from taskspace_core.sources import load_many

    lm = load_model(ModelSpec(str(model_dir), device="cpu"))
    diffs = []
    for name in sp.names:
        task = next(t for t in load_many([f"file:{csv}"]) if t.name == name)
        pairs = task.split(8, 8)[1]
        d = [plain_last_token_states(lm, p.good) - plain_last_token_states(lm, p.bad) for p in pairs]
        diffs.append(sum(d) / len(d))
    n, n_layers = len(diffs), diffs[0].shape[0]

    def cos(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.sqrt((a @ a) * (b @ b)))

    for layer in range(n_layers):
        want = [[cos(diffs[i][layer], diffs[j][layer]) for j in range(n)] for i in range(n)]
        np.testing.assert_allclose(sp.matrices["R_layers"][layer], want, atol=1e-5)
    want = [[cos(diffs[i].ravel(), diffs[j].ravel()) for j in range(n)] for i in range(n)]
    np.testing.assert_allclose(sp.matrices["R"], want, atol=1e-5)
    assert "R" in symmetric_views(sp)


def test_registry_names_every_built_in_method_once():
    names = [m.name for m in methods.methods()]
    assert names[:6] == ["base", "transfer_exact", "transfer_first_order", "gradient_cosine", "mask_overlap",
                         "representation"]  # fmt: skip
    assert methods.default_config_names() == ("transfer", "gradient")  # old configs keep their plan
    on = [m.name for m in methods.active(("transfer", "gradient"), ProbeConfig(transfer="first_order"))]
    assert on == ["base", "transfer_first_order", "gradient_cosine", "mask_overlap"]
    assert [k.name for k in methods.planned_kinds(methods.active(("representation",), ProbeConfig()))] == [
        "base",
        "rep",
    ]


def test_run_config_round_trips_and_names_bad_fields():
    raw = default_config()
    cfg = parse_config(raw, "default")
    again = parse_config(cfg.to_dict(), "default")
    assert again.to_dict() == cfg.to_dict() and again.probe_config() == cfg.probe_config()
    assert ProbeConfig.from_dict(cfg.probe_config().to_dict()) == cfg.probe_config()
    assert config_errors(raw) == {}
    bad = {**raw, "probe": {**raw["probe"], "metric": "f1"}, "ftgd": {**raw["ftgd"], "loss": "hinge"}}
    errs = config_errors(bad)
    assert set(errs) == {"probe.metric", "ftgd.loss"}
    assert "mean_margin" in errs["probe.metric"] and "'diff' or 'logistic'" in errs["ftgd.loss"]
    with pytest.raises(ConfigError, match="methods") as e:
        parse_config({**raw, "methods": ["transfer", "magic"]})
    assert e.value.field == "methods" and "representation" in str(e.value)
    assert set(config_errors({**raw, "ftgd": {"stepz": 3}})) == {"ftgd"}
