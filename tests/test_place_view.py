"""The Place view and its logic (taskspace_app.placing): the extended config, finding the
extended analysis, intervals from per-pair margins, and the page on a synthetic extension."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from taskspace_app import placing
from taskspace_core import spaces
from taskspace_core.results import SpaceResult, TaskInfo, list_spaces, load_space, save_space, space_key
from taskspace_core.store import Store
from tests.fixtures_spaces import make_space, prefill_cache
from tests.sim_spaces import planted_transfer, simulate_margins
from tests.test_app import charts, ok, page

COPY_OF = "sv_agr_1"


def _extended(base: SpaceResult, rng: np.random.Generator) -> SpaceResult:
    """``base`` plus a task 'my_sv' that is a slightly noisy copy of sv_agr_1 in every matrix."""
    k = base.names.index(COPY_OF)
    n = len(base.names)
    mats = {}
    for name, M in base.matrices.items():
        A = np.zeros((n + 1, n + 1))
        A[:n, :n] = M
        A[n, :n], A[:n, n], A[n, n] = M[k], M[:, k], M[k, k]
        A[n, :n] += rng.normal(0, 0.01, n)
        A[:n, n] += rng.normal(0, 0.01, n)
        mats[name] = (A + A.T) / 2 if np.allclose(M, M.T) else A
    mine = TaskInfo("my_sv", "subject_verb_agreement", "syntax", "my pairs", {"licensor": "none"}, "A", "B", 12)
    return SpaceResult(
        model=base.model,
        taskset=base.taskset + "+set:mine",
        series=base.series,
        tasks=(*base.tasks, mine),
        config=base.config,
        metric=base.metric,
        eval1={m: np.append(v, v[k]) for m, v in base.eval1.items()},
        matrices=mats,
        n_eval_pairs=48,
        created=base.created + 1,
    )


@pytest.fixture()
def ext_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    prefill_cache(tmp_path)
    base = make_space("360M", 360_000_000, 2000, seed=6)  # the last model prefill_cache writes
    with Store(tmp_path) as store:
        save_space(
            store,
            space_key(base.model.fingerprint, base.model.revision, "ext", "synthetic-config"),
            _extended(base, np.random.default_rng(0)),
        )
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path))
    return tmp_path


def test_extended_config_adds_sets_for_this_model_only() -> None:
    sp = make_space("135M", 1, 0, seed=1)
    models = [
        {"name": "synthetic/smollm2-135m", "revision": "step0", "step": 0},
        {"name": "synthetic/smollm2-135m", "revision": "step1000", "step": 1000},
    ]
    raw = {"name": "r", "series": "s", "models": models, "tasks": ["builtin:a,b"], "probe": {"n_eval": 8}}
    object.__setattr__(sp, "config", {**sp.config, "run": raw})
    cfg = placing.extended_config(sp, ["mine", "mine", "other"])
    assert cfg["tasks"] == ["builtin:a,b", "set:mine", "set:other"] and cfg["models"] == models[:1]
    assert cfg["name"] == "r+mine+other" and cfg["probe"] == raw["probe"] and cfg["series"] == "s"
    with pytest.raises(placing.PlacementError, match="already part"):
        placing.extended_config(
            SimpleNamespace(config={"run": {**raw, "tasks": ["set:mine"]}}, model=sp.model), ["mine"]
        )
    with pytest.raises(placing.PlacementError, match="at least one"):
        placing.extended_config(sp, [])
    with pytest.raises(placing.PlacementError, match="does not record"):
        placing.extended_config(make_space("135M", 1, 0, seed=1), ["mine"])


def test_extensions_are_the_same_model_and_config_on_more_tasks(ext_cache: Path) -> None:
    store = Store(ext_cache)
    recs = [r.to_dict() | {"key": r["key"]} for r in list_spaces(store)]
    load = lambda r: load_space(store, r["key"])  # noqa: E731
    by_fp = {}
    for r in recs:
        by_fp.setdefault((r["fingerprint"], r["n_tasks"]), r)
    base_rec = by_fp[("fp-360M-2000", 8)]
    found = placing.extensions(base_rec, load(base_rec), recs, load)
    assert [r["n_tasks"] for r in found] == [9]
    other = by_fp[("fp-135M-2000", 8)]
    assert placing.extensions(other, load(other), recs, load) == []  # another model is never an extension
    ext = load(found[0])
    assert spaces.added_tasks(load(base_rec).names, ext.names) == ["my_sv"]
    assert not placing.extends(ext, load(base_rec))


def test_replicates_follow_the_view_and_say_why_when_absent() -> None:
    margins = simulate_margins(planted_transfer("aabbcc"), n_pairs=24, noise_sd=1.0, seed=0)
    T0, _ = spaces.transfer_replicates(margins, "profile", n_boot=2)
    with_m = SimpleNamespace(pair_margins=margins, metric="mean_margin")
    for which, diagonal in (("profile", "include"), ("profile", "exclude")):
        S = spaces.symmetrise(T0, "profile", profile_diagonal=diagonal)
        reps, note = placing.replicates_for(with_m, which, S, n_boot=40)
        assert reps.shape == (40, 6, 6) and "bootstrap" in note
        want = spaces.symmetrise_stack(spaces.bootstrap_transfer(margins, n_boot=40).replicates, "profile", diagonal)
        assert np.allclose(reps, want)  # same convention as the view shown
    S_sym = spaces.symmetrise(T0, "sym")
    assert placing.replicates_for(with_m, "sym", S_sym, n_boot=5)[0] is not None
    assert placing.replicates_for(with_m, "profile", S_sym, n_boot=5) == (
        None,
        "point values only: the stored margins do not reproduce this space",
    )
    assert placing.replicates_for(SimpleNamespace(metric="mean_margin"), "sym", S_sym)[1] == placing.NO_MARGINS
    assert "not a mean over eval pairs" in placing.replicates_for(with_m, "G", S_sym)[1]
    assert "exact" in placing.replicates_for(with_m, "sym", S_sym, estimate="first_order")[1]


def test_place_view_shows_the_added_task_next_to_its_original(ext_cache: Path) -> None:
    at = ok(
        page("place", series="synthetic|synthetic-8", model="smollm2-360m@step2000", rev="step2000", matrix="profile")
    )
    assert "Placement" in [s.value for s in at.subheader]
    cats = at.dataframe[0].value
    assert set(cats["best category"]) == {"subject_verb_agreement"}, cats
    nn = at.dataframe[1].value  # the first tab: nearest neighbours in the first symmetric space
    assert nn["task"].iloc[0] == COPY_OF and nn["95% interval"].iloc[0] == ""
    assert any(placing.NO_MARGINS in c.value for c in at.caption)
    assert charts(at) == 2  # the map and the tree, the added task ringed in both
    expander = at.expander[0]
    assert "Add tasks" in expander.label


def test_place_view_shows_intervals_when_the_run_stored_pair_margins(
    ext_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extension whose T comes from per-pair margins (a noisy copy of sv_agr_1 added): intervals shown."""
    base = make_space("360M", 360_000_000, 2000, seed=6)
    ext = _extended(base, np.random.default_rng(0))
    k = base.names.index(COPY_OF)
    cats = "".join(chr(97 + sorted(set(base.labels("category"))).index(c)) for c in base.labels("category"))
    T_true = np.zeros((9, 9))
    T_true[:8, :8] = planted_transfer(cats, within=1.0)
    T_true[8, :8], T_true[:8, 8], T_true[8, 8] = T_true[k, :8], T_true[:8, k], T_true[k, k]
    margins = simulate_margins(T_true, n_pairs=48, noise_sd=1.0, seed=4)
    T0, _ = spaces.transfer_replicates(margins, "profile", n_boot=1)
    ext.matrices.update(T=T0)
    ext.matrices.pop("T_first_order")
    object.__setattr__(ext, "pair_margins", margins)  # a SpaceResult field: stored and read back by the codec
    key = space_key(ext.model.fingerprint, ext.model.revision, "ext2", "cfg")
    with Store(ext_cache) as store:
        save_space(store, key, ext)
        assert isinstance(load_space(store, key).pair_margins, spaces.PairMargins)

    at = ok(page("place", series="synthetic|synthetic-8", model="smollm2-360m@step2000", rev="step2000"))
    cats_df = at.dataframe[0].value.set_index("task space")
    profile = cats_df.loc[[i for i in cats_df.index if i.startswith("profile")][0]]
    assert profile["best category"] == "subject_verb_agreement" and profile["bootstrap support %"] > 90
    assert profile["margin 95% interval"].startswith("[")
    nn = at.dataframe[1].value  # sym-T, from the same margins
    assert nn["task"].iloc[0] == COPY_OF and nn["95% interval"].iloc[0].startswith("[")
    assert nn["nearest in % of resamples"].iloc[0] > 50
    assert any("bootstrap intervals over eval pairs" in c.value for c in at.caption)


def test_place_view_without_an_extension_offers_to_add(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefill_cache(tmp_path)
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path))
    at = ok(page("place"))
    assert any("No saved pair set" in i.value for i in at.info)
    assert any("No extended analysis" in i.value for i in at.info) and charts(at) == 0
