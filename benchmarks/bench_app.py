"""First-figure time of each analysis view in a real browser, cold and warm (target: <= 1.5 s warm).

Starts ``streamlit run app.py`` on a cache (``--cache DIR``, default: a temporary cache with
the synthetic series the app tests use), opens Home in Debian's chromium, then clicks each
analysis view in the sidebar and times until its first plotly figure is drawn: the first
round is cold (a fresh server), the later rounds warm. Last, each view is opened once by its
address (a new browser session on the warm server: page load and websocket included).

    .venv/bin/python benchmarks/bench_app.py [--cache DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import ROOT  # noqa: F401 - puts the repository on sys.path


def main() -> None:
    from tests.e2e_helpers import chromium, reload_seconds, settle, streamlit_server, view_draw_times
    from tests.fixtures_spaces import prefill_cache

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, help="a cache with analyses (default: the synthetic series)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of visits (the first is cold)")
    args = ap.parse_args()
    cache = args.cache
    if cache is None:
        cache = Path(tempfile.mkdtemp(prefix="bench-app-"))
        prefill_cache(cache)
    with streamlit_server(cache) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        t0 = time.perf_counter()
        page.goto(url)
        settle(page)  # the first page view of a fresh server (the UMAP warm-up starts now)
        home = time.perf_counter() - t0
        times = view_draw_times(page, url, rounds=args.rounds)
        reloads = {}
        for view in times:  # warm server, but a new browser session per view
            reloads[view] = reload_seconds(page, url, view)
            settle(page)
    print(f"first figure per view (s), cache {cache}")
    print(f"Home, first page view of a fresh server, until its script run ends: {home:.2f} s")
    print(f"{'view':<20} {'cold':>6} {'warm median':>12} {'warm max':>9} {'opened by address':>18}")
    for view, ts in times.items():
        warm = ts[1:] or [float("nan")]
        print(f"{view:<20} {ts[0]:6.2f} {statistics.median(warm):12.2f} {max(warm):9.2f} {reloads[view]:18.2f}")


if __name__ == "__main__":
    main()
