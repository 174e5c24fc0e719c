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


def test_home_states_the_headline_with_interval_and_p(cache: Path) -> None:
    import numpy as np

    from precompute.margins import space_margins
    from taskspace_app.widgets import md
    from taskspace_core.headline import category_headline
    from taskspace_core.results import load_space

    store = Store(cache)
    rec = max(list_spaces(store), key=lambda r: r["step"])  # no default series here: the most trained model
    space = load_space(store, rec["key"])
    margins, why = space_margins(space, store)
    assert margins is not None, why
    n = len(space.names)
    T = [[margins.tuned[i][j].mean() - margins.base[j].mean() for j in range(n)] for i in range(n)]
    np.testing.assert_allclose(T, space.T, atol=1e-9)  # the units are read back in the space's order
    expected = category_headline(space, margins).sentence()
    assert "95% CI" in expected and "Mantel p = " in expected and "reliability" in expected
    at = ok(page("home"))
    said = [m.value for m in at.markdown if m.value.startswith("**Headline.**")]
    assert said == [f"**Headline.** {md(expected)}"] and space.model.label in expected
