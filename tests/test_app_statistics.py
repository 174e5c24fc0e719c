"""Heavy statistics in the app: computed on the background worker, kept in the store, UMAP warmed off the page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taskspace_app import reading
from taskspace_app.background import Background
from taskspace_core import spaces
from taskspace_core.results import load_space
from taskspace_core.store import Store
from tests.test_app import cache, charts, filled, ok, page  # noqa: F401 - fixtures
from tests.test_background import fake_worker

__all__ = ["cache", "filled"]


@pytest.fixture()
def fresh_worker() -> None:
    reading._background.clear()  # a new server process: nothing in memory, the store holds what was computed
    yield
    reading._background.clear()


def test_hypothesis_fits_are_stored_for_the_next_process(cache: Path, fresh_worker: None) -> None:
    ok(page("hypotheses", perm="999", levels="category"))
    fits = list(Store(cache).entries("stat"))
    n_models = len(reading.entries(str(cache)))
    assert len(fits) >= n_models  # one per model for this level and setting
    rec = reading.entries(str(cache))[0]
    sp = load_space(Store(cache), rec["key"])
    S, _ = reading._matrix(str(cache), rec["key"], float(rec["created"]), "profile", "exact")
    want = spaces.fit_hypothesis(
        S, spaces.HypothesisSpace.from_labels("category", sp.names, sp.labels("category")), 999
    )

    def never() -> dict:
        raise AssertionError("recomputed although stored")

    from taskspace_app.background import stat_key

    settings = {"which": "profile", "estimate": "exact", "level": "category", "n_perm": 999, "custom": None}
    key = stat_key(rec["key"], float(rec["created"]), "fit", **settings)
    got = Background(Store(cache)).submit(key, never).result(timeout=30)  # another process: from the store
    assert got["spearman"] == pytest.approx(want.spearman) and got["mantel_p"] == pytest.approx(want.mantel_p)


def test_map_shows_mds_while_umap_warms(
    cache: Path, fresh_worker: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_worker(monkeypatch, tmp_path / "release")  # the numba compile, held until released
    monkeypatch.setenv("TASKSPACE_UMAP_WARMUP", "1")
    ok(page("home"))  # app start: the warm-up begins in the UMAP process; the page does not wait for it
    assert reading.background().umap_warming()
    at = ok(page("map", method="umap", along="single"))
    assert charts(at) == 1 and any("UMAP is still being compiled" in i.value for i in at.info)
    rec = reading.entries(str(cache))[0]
    assert np.abs(reading.layout(rec, "profile", "exact", "umap")[0]).sum() > 0  # MDS meanwhile
    (tmp_path / "release").touch()
    assert reading.background()._umap_ready.wait(60)
    at = ok(page("map", method="umap", along="single"))
    assert charts(at) == 1 and not any("compiled" in i.value for i in at.info)
    assert np.abs(reading.layout(rec, "profile", "exact", "umap")[0]).sum() == 0  # now UMAP's (fake) layout
