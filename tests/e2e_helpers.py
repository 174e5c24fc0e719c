"""Helpers of the real-browser tests: a ``streamlit run app.py`` server, Debian's Chromium, page waits.

Not a test module. The browser is Debian's ``/usr/bin/chromium`` driven by Playwright's sync
API (never ``playwright install``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def require_browser() -> None:
    """Skip unless Debian's chromium and the playwright package are there."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: the browser test needs Debian's chromium (CI installs it)")
    pytest.importorskip("playwright.sync_api", reason="playwright (the Python package) is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def streamlit_server(cache: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``streamlit run app.py`` on 127.0.0.1 with ``TASKSPACE_CACHE=cache`` (plus ``env``); yields its URL.

    The server's output goes to ``<cache>/streamlit.log``; it is stopped on exit."""
    port = free_port()
    full_env = {**os.environ, "TASKSPACE_CACHE": str(cache), "BROWSER_PATH": CHROMIUM, **(env or {})}
    log = open(cache / "streamlit.log", "wb")  # noqa: SIM115 - closed after the server stops
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not start: " + (cache / "streamlit.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium browser (Playwright ``Browser``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def settle(page: object) -> None:
    """Wait until the script run is over (Streamlit shows a 'Running…' status while it runs)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=60_000)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state')"
        " === 'notRunning'",
        timeout=90_000,
    )
    page.wait_for_timeout(300)  # let plotly finish drawing after the last delta


def screenshot(page: object, name: str) -> None:
    """Full-page screenshot: Streamlit scrolls inside its main pane, so grow the viewport to fit it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate(
        '() => Math.max(...[...document.querySelectorAll(\'[data-testid="stMain"], section, '
        '[data-testid="stAppViewContainer"]\')].map(e => e.scrollHeight), 1000)'
    )
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 40, 6000)})
    page.wait_for_timeout(400)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def no_exception(page: object) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, page.locator(
        "[data-testid='stException']"
    ).first.inner_text()


# the analysis views, by sidebar title: (url path, key of the first figure each one draws)
VIEW_FIGURES = {
    "Task space": ("space", "space_heatmap"),
    "Map": ("map", "map_chart"),
    "Tree": ("tree", "tree_chart"),
    "Parameter overlap": ("overlap", "overlap_heatmap"),
    "Hypotheses": ("hypotheses", "hyp_bars"),
}


def _drawn(page: object, key: str, timeout_ms: int) -> None:
    page.wait_for_selector(f".st-key-{key} .js-plotly-plot .main-svg", state="visible", timeout=timeout_ms)


def first_figure_seconds(page: object, title: str, timeout_ms: int = 180_000) -> float:
    """Seconds from clicking view ``title`` in the sidebar until its first figure is drawn."""
    link = page.locator("[data-testid='stSidebarNav'] a", has_text=title).first
    t0 = time.perf_counter()
    link.click()
    _drawn(page, VIEW_FIGURES[title][1], timeout_ms)
    return time.perf_counter() - t0


def reload_seconds(page: object, url: str, title: str, timeout_ms: int = 180_000) -> float:
    """Seconds from opening view ``title`` by its address (a new session: page load, websocket) to its figure."""
    path, key = VIEW_FIGURES[title]
    t0 = time.perf_counter()
    page.goto(f"{url}/{path}")
    _drawn(page, key, timeout_ms)
    return time.perf_counter() - t0


def view_draw_times(page: object, url: str, rounds: int = 2) -> dict[str, list[float]]:
    """First-figure times of each analysis view, switching views by the sidebar: round 0 is cold.

    Opens Home first; after each view the script run is let finish, so that one view's
    leftover work does not count against the next."""
    page.goto(url)
    settle(page)
    times: dict[str, list[float]] = {t: [] for t in VIEW_FIGURES}
    for _ in range(rounds):
        for title in VIEW_FIGURES:
            times[title].append(first_figure_seconds(page, title))
            settle(page)
    return times
