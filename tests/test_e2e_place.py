"""End to end in a real browser: a linguist's own pairs placed in a cached analysis.

A real runner fills the cache with a tiny model's analysis of three toy tasks; in the
browser, a CSV of a fourth task is uploaded and saved (Your pairs), added to the analysis
(Place your tasks), where the plan must show that only the new task's units run, and the
real background job runs them; the page then shows where the new task lands.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_helpers import chromium, no_exception, require_browser, screenshot, settle, streamlit_server
from tests.tiny_runs import TASK_NAMES, run_series, toy_rows

pytestmark = pytest.mark.slow
NEW_TASK = TASK_NAMES[3]  # 'coordination': not in the three-task analysis


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_browser()
    tmp = tmp_path_factory.mktemp("place")
    mp = pytest.MonkeyPatch()
    mp.setenv("TASKSPACE_CACHE", str(tmp / "cache"))
    try:
        run_series(tmp, steps=(0,), n_tasks=3)  # 3 tasks x (base, ftgd) + 9 transfers, cached
    finally:
        mp.undo()
    yield tmp


def _metric(page: object, label: str) -> str:
    box = page.locator("[data-testid='stMetric']").filter(has_text=label).first
    return box.locator("[data-testid='stMetricValue']").inner_text().strip()


def test_uploaded_pairs_are_placed_in_the_analysis(analysed: Path) -> None:
    csv = analysed / "my_coord.csv"
    rows = [r for r in toy_rows() if r[2] == NEW_TASK]
    csv.write_text("sentence_good,sentence_bad,task,category\n" + "".join(",".join(r) + "\n" for r in rows))
    cache = analysed / "cache"
    with streamlit_server(cache) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/pairs")
        settle(page)
        page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(str(csv))
        page.get_by_text("ready to save").first.wait_for(timeout=60_000)
        settle(page)
        page.get_by_role("button", name="Save").click()
        page.get_by_text("Saved as task set").first.wait_for(timeout=30_000)

        page.get_by_role("button", name="Place it in a cached analysis").click()
        page.get_by_text("No extended analysis").first.wait_for(timeout=30_000)
        settle(page)
        picked = page.locator("[data-testid='stMultiSelect']").filter(has_text="Saved pair sets to add")
        assert "my_coord" in picked.inner_text()  # the saved set comes preselected
        page.get_by_role("button", name="Show the plan").click()
        page.locator("[data-testid='stMetric']").filter(has_text="to do").first.wait_for(timeout=90_000)
        # 4 tasks: 4 base + 4 FTGD + 16 transfer units; only the new task's 1 + 1 + 7 are to do
        assert (_metric(page, "units"), _metric(page, "cached"), _metric(page, "to do")) == ("24", "15", "9")
        no_exception(page)
        page.get_by_role("button", name="Add and run").click()

        # the jobs panel polls the real job; when it ends the page reruns and places the task
        page.get_by_text("Nearest neighbours").first.wait_for(timeout=300_000)
        settle(page)
        no_exception(page)
        assert page.get_by_role("heading", name=NEW_TASK).count() == 1
        assert page.locator("[data-testid='stDataFrame']").count() >= 2  # best category + a neighbour table
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2")
        assert page.locator(".js-plotly-plot").count() == 2  # the map and the tree
        legend = page.locator(".js-plotly-plot").first.inner_text()
        assert "added" in legend  # the ring around the placed task
        screenshot(page, "place")
