"""Redraw the README's screenshot: the Task space page of a cached analysis, in a real browser.

Starts the app on the cache (``TASKSPACE_CACHE`` or ``--cache``), opens the Task space page
of the default series, waits for the heatmap and writes ``docs/screenshot-task-space.png``.

    .venv/bin/python scripts/readme_screenshot.py [--cache DIR] [--out docs/screenshot-task-space.png]

Needs Debian's chromium and the playwright package (as the browser tests do).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from taskspace_core.paths import cache_dir  # noqa: E402
from tests.e2e_helpers import chromium, settle, streamlit_server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=None, help="cache directory (default: TASKSPACE_CACHE or ./cache)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot-task-space.png"))
    ap.add_argument("--series", default="smollm2-default", help="the series whose trained model is shown")
    args = ap.parse_args()
    cache = Path(args.cache).resolve() if args.cache else cache_dir()
    with streamlit_server(cache) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 1450})  # the 16-row heatmap and its column labels
        page.goto(f"{url}/space?series={args.series}&matrix=T&order=cluster&clip=1")
        settle(page)
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
        page.wait_for_timeout(1500)  # the heatmap's category bands are drawn after the first frame
        page.screenshot(path=args.out, clip={"x": 300, "y": 0, "width": 1000, "height": 1450})  # main pane, no sidebar
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
