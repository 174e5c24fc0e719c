"""End to end in a real browser: ``streamlit run app.py`` on a pre-filled cache, every page visited.

Uses Debian's Chromium through Playwright's sync API (never ``playwright install``).
Full-page screenshots go to ``tests/artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_helpers import ARTIFACTS, chromium, require_browser, streamlit_server
from tests.e2e_helpers import no_exception as _no_exception
from tests.e2e_helpers import screenshot as _screenshot
from tests.e2e_helpers import settle as _settle
from tests.fixtures_spaces import prefill_cache

pytestmark = pytest.mark.slow

# url path -> what must be on the page once it has rendered (charts: number of plotly charts)
# url path -> what must be on the page once it has rendered (charts: number of plotly charts).
# The first visit is a deep link on purpose: it must still get the app's navigation and layout.
PAGES = {
    "space?matrix=T&order=cluster": {"text": "Task space", "charts": 1},
    "": {"text": "In the cache", "charts": 0},
    "map?along=checkpoints&size=360M": {"text": "Map", "charts": 1},
    "tree?level=category": {"text": "ARI vs category", "charts": 1},
    "overlap?matrix=lift": {"text": "Parameter overlap", "charts": 1},
    "hypotheses?perm=999": {"text": "Generalisation to overarching concepts", "charts": 3},
    "run": {"text": "Run an analysis", "charts": 0},
    "pairs": {"text": "Your pairs", "charts": 0},
}

BAD_CSV = (
    "sentence_good,sentence_bad,task,category\n"
    + "".join(f"The cat{i} sleeps.,The cat{i} sleep.,sv,agreement\n" for i in range(12))
    + "The dog barks.,,sv,agreement\n"  # row 14: sentence_bad is empty
)


@pytest.fixture(scope="module")
def e2e_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("e2e_cache")
    prefill_cache(cache)
    return cache


@pytest.fixture(scope="module")
def server(e2e_cache: Path) -> Iterator[str]:
    require_browser()
    with streamlit_server(e2e_cache) as url:
        yield url


@pytest.fixture(scope="module")
def browser_page(server: str) -> Iterator[object]:
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1400, "height": 1000})


def test_every_page_renders(server: str, browser_page: object) -> None:
    page = browser_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for path, want in PAGES.items():
        page.goto(f"{server}/{path}")
        _settle(page)
        page.get_by_text(want["text"]).first.wait_for(timeout=60_000)
        if want["charts"]:
            page.wait_for_selector(".js-plotly-plot svg", timeout=60_000)
            page.wait_for_function(
                f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {want['charts']}",
                timeout=60_000,
            )
        _no_exception(page)
        nav = page.locator("[data-testid='stSidebarNav']").inner_text()
        assert "Parameter overlap" in nav and "Your pairs" in nav, nav  # the app's navigation, not a folder list
        name = path.split("?")[0] or "home"
        _screenshot(page, name)
        if want["charts"]:
            assert page.locator(".js-plotly-plot").count() >= want["charts"], path


def test_query_string_reproduces_view(server: str, browser_page: object) -> None:
    page = browser_page
    page.goto(f"{server}/space?model=smollm2-135m%40step1000&rev=step1000&matrix=G&order=file")
    _settle(page)
    page.wait_for_selector(".js-plotly-plot svg", timeout=60_000)
    assert page.get_by_text("gradient cosine G").count() >= 1
    assert "matrix=G" in page.url and "model=smollm2-135m%40step1000" in page.url


def test_upload_reports_bad_row(server: str, browser_page: object, tmp_path: Path, e2e_cache: Path) -> None:
    page = browser_page
    bad = tmp_path / "my pairs.csv"
    bad.write_text(BAD_CSV)
    page.goto(f"{server}/pairs")
    _settle(page)
    page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(str(bad))
    page.get_by_text("must be fixed").first.wait_for(timeout=60_000)
    _settle(page)
    err = page.locator("[data-testid='stAlert']").first.inner_text()
    assert "row 14" in err and "sentence_bad" in err, err
    _no_exception(page)
    _screenshot(page, "pairs_upload_error")

    # a good file: preview with marked differences, then save it as a named task set
    good = tmp_path / "good_pairs.csv"
    good.write_text(BAD_CSV.replace("The dog barks.,,", "The dog barks.,The dog bark.,"))
    page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(str(good))
    page.get_by_text("ready to save").first.wait_for(timeout=60_000)
    _settle(page)
    _no_exception(page)
    _screenshot(page, "pairs_upload_ok")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved as task set").first.wait_for(timeout=30_000)
    assert (e2e_cache / "tasksets" / "good_pairs.csv").exists()


def test_hover_tabs_and_png(server: str, browser_page: object) -> None:
    page = browser_page
    page.goto(f"{server}/space")
    _settle(page)
    plot = page.locator(".js-plotly-plot").first
    plot.locator("svg").first.wait_for(timeout=60_000)
    box = page.locator(".js-plotly-plot .nsewdrag").last.bounding_box()  # the main heatmap's drag layer
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.wait_for_selector(".hoverlayer .hovertext", timeout=10_000)
    hover = page.locator(".hoverlayer .hovertext").first.text_content() or ""  # svg: no inner_text
    assert "row:" in hover and "col:" in hover and "✓" in hover and "T =" in hover, hover

    page.goto(f"{server}/overlap")
    _settle(page)
    for tab, shot in (("Where masks live", "overlap_where"), ("Across sizes and checkpoints", "overlap_series")):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(800)
        _no_exception(page)
        _screenshot(page, shot)

    page.goto(f"{server}/tree")
    _settle(page)
    page.get_by_role("button", name="make PNG").click()
    # kaleido drives chromium: either a PNG download appears or a clear warning, never a traceback
    page.locator("button:has-text('PNG'):not(:has-text('make')), [data-testid='stAlert']").first.wait_for(
        timeout=90_000
    )
    _no_exception(page)
    assert page.get_by_role("button", name="PNG", exact=True).count() == 1
