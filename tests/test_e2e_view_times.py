"""Per-view draw times in a real browser: switching views by the sidebar, first figure of each, cold and warm.

Prints the times (the target, <= 1.5 s warm per view, is checked by a person with
``benchmarks/bench_app.py`` on a real analysis; no timing is asserted here).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e_helpers import VIEW_FIGURES, chromium, no_exception, require_browser, streamlit_server, view_draw_times
from tests.fixtures_spaces import prefill_cache

pytestmark = pytest.mark.slow


def test_each_view_draws_its_first_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_browser()
    prefill_cache(tmp_path)
    with streamlit_server(tmp_path) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        times = view_draw_times(page, url, rounds=2)
        no_exception(page)
    assert set(times) == set(VIEW_FIGURES) and all(len(t) == 2 for t in times.values())
    with capsys.disabled():
        print(
            "\nfirst figure per view (s): "
            + ", ".join(f"{v} cold {t[0]:.2f} warm {t[1]:.2f}" for v, t in times.items())
        )
