"""Render time of the app's Home page on a warm cache (target: under 2 s).

Fills a temporary cache with the synthetic series the app tests use, runs Home once
(cold) and then several times (warm) in Streamlit's AppTest, and prints the times.

    .venv/bin/python benchmarks/bench_app.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from _common import ROOT


def main() -> None:
    from streamlit.testing.v1 import AppTest

    from tests.fixtures_spaces import prefill_cache

    cache = tempfile.mkdtemp(prefix="bench-app-")
    prefill_cache(cache)
    os.environ["TASKSPACE_CACHE"] = cache
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    t0 = time.perf_counter()
    at.run()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(5):
        t0 = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - t0)
    assert not at.exception
    print(f"Home: cold {cold:.2f} s, warm median {statistics.median(warm):.2f} s (max {max(warm):.2f} s, 5 runs)")


if __name__ == "__main__":
    main()
