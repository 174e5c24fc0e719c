"""Every page of the app on a cache filled by a real run of the runner on tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskspace_core.results import list_spaces
from taskspace_core.store import Store
from tests.test_app import charts, ok, page
from tests.tiny_runs import run_series


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("real")
    mp = pytest.MonkeyPatch()
    mp.setenv("TASKSPACE_CACHE", str(tmp / "cache"))
    try:
        run_series(tmp, steps=(0, 40))
    finally:
        mp.undo()
    return tmp / "cache"


@pytest.fixture()
def cache(real_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TASKSPACE_CACHE", str(real_cache))
    return real_cache


def test_runner_filled_two_checkpoints(cache: Path) -> None:
    recs = list_spaces(Store(cache))
    assert sorted(r["step"] for r in recs) == [0, 40] and {r["series"] for r in recs} == {"tiny-series"}


@pytest.mark.parametrize(
    ("name", "min_charts"), [("space", 1), ("map", 1), ("tree", 1), ("overlap", 1), ("hypotheses", 1)]
)
def test_views_draw_the_real_run(cache: Path, name: str, min_charts: int) -> None:
    at = ok(page(name))
    assert charts(at) >= min_charts, f"{name} drew {charts(at)} chart(s)"


def test_home_lists_the_real_run(cache: Path) -> None:
    at = ok(page("home"))
    df = at.dataframe[0].value
    assert set(df["step"]) == {0, 40} and len(df) == 2
