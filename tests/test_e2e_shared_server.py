"""Two users on one shared server, in a real browser: logins, owned jobs, the queue, cancel, logs.

A real ``streamlit run app.py`` in server mode (bound to 127.0.0.1 but forced with
``TASKSPACE_SERVER_MODE=1``), users from a ``TASKSPACE_AUTH_FILE`` made with the project's own
account functions, one runner (``TASKSPACE_MAX_RUNNERS=1``). Alice and Bob each use their own
browser context (own cookies, own Streamlit session).

The jobs are real jobs (queue, wrapper process, cancel by signal), but the ``precompute run``
command they start is held by a stand-in: a ``sitecustomize`` on the server's PYTHONPATH that,
in a process started with ``--progress-file`` (only job runners are), writes a line to the
job's log and then either fails at once (run name containing ``broken``) or reports progress
and sleeps. So Alice's job occupies the runner for as long as the test needs, using no CPU,
and deterministically. The test asserts what each person sees on the page, then that the
jobs functions behind the page refuse Bob the same way.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from precompute import jobs
from precompute.job_process import pid_record
from taskspace_core import accounts
from tests.e2e_helpers import chromium, no_exception, require_browser, screenshot, settle, streamlit_server
from tests.fixtures_spaces import save_private_space

pytestmark = pytest.mark.slow

USERS = {"alice": "alice-secret-1", "bob": "bob-secret-22"}
LOG_SECRET = "only-the-owner-reads-this-log-line"
STAND_IN_RUNNER = f'''"""Stand-in for precompute job runners in tests/test_e2e_shared_server.py."""
import json, os, sys, time

if "--progress-file" in sys.argv:
    config = open(sys.argv[sys.argv.index("--config") + 1], encoding="utf-8").read()
    progress = sys.argv[sys.argv.index("--progress-file") + 1]
    print("{LOG_SECRET}", flush=True)
    if "broken" in config:
        print("the stand-in runner stops here", flush=True)
        os._exit(3)
    state = {{"state": "running", "done": 0, "total": 12, "eta_s": 120, "message": "", "updated": time.time()}}
    with open(progress + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(progress + ".tmp", progress)
    time.sleep(240)  # until the test cancels the job (bounded: never an orphan for long)
    os._exit(0)
'''
PAIRS_CSV = "sentence_good,sentence_bad,task,category\n" + "".join(
    f"The bird{i} sings.,The bird{i} sing.,bird_agreement,agreement\n" for i in range(12)
)
PRIVATE_SECRET = "only-alice-sees-this-sentence"
SERIES = "Series (groups models in the size/checkpoint views)"
ADMIN = SimpleNamespace(name="test-cleanup", is_admin=True)


@pytest.fixture()
def shared_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    require_browser()
    for var in ("TASKSPACE_ALLOW_ANONYMOUS", "TASKSPACE_ALLOWLIST", "TASKSPACE_LIMITS", "TASKSPACE_ADMINS"):
        monkeypatch.delenv(var, raising=False)
    cache, hold = tmp_path / "cache", tmp_path / "stand-in"
    cache.mkdir()
    hold.mkdir()
    save_private_space(cache, "alice", PRIVATE_SECRET)  # a result of Alice's own saved pairs
    (hold / "sitecustomize.py").write_text(STAND_IN_RUNNER)
    users = tmp_path / "users.yaml"
    for name, secret in USERS.items():
        accounts.add_account(users, name, secret)
    env = {
        "TASKSPACE_SERVER_MODE": "1",
        "TASKSPACE_AUTH_FILE": str(users),
        "TASKSPACE_MAX_RUNNERS": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(hold), os.environ.get("PYTHONPATH", "")) if p),
    }
    try:
        with streamlit_server(cache, env) as url:
            yield url, cache
    finally:
        _stop_all_jobs(cache)


def _stop_all_jobs(cache: Path) -> None:
    """Cancel every live job (SIGTERM to its group), then SIGKILL what is left: no runner outlives the test."""
    for s in jobs.list_jobs(cache):
        if s.alive:
            jobs.cancel_job(s.id, cache, user=ADMIN)
    deadline = time.time() + 15
    while time.time() < deadline and any(s.alive for s in jobs.list_jobs(cache)):
        time.sleep(0.2)
    for s in jobs.list_jobs(cache):
        rec = pid_record(Path(s.directory))
        if s.alive and rec is not None:
            os.killpg(rec[0], signal.SIGKILL)


def _login(page: object, url: str, path: str, name: str) -> None:
    page.goto(f"{url}/{path}")
    settle(page)
    side = page.locator("[data-testid='stSidebar']")
    for label, value in (("User name", name), ("Password or access token", USERS[name])):
        side.get_by_label(label).fill(value)
        side.get_by_label(label).press("Enter")
        settle(page)
    side.get_by_role("button", name="Log in").click()
    side.get_by_text("Logged in as").wait_for(timeout=60_000)
    settle(page)
    assert f"Logged in as {name}" in side.inner_text()


def _fill(page: object, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    settle(page)


def _start(page: object, run_name: str, series: str) -> None:
    """On the Run page (defaults: the offline model, the first built-in paradigms, both methods), press Start."""
    _fill(page, "Run name", run_name)
    _fill(page, SERIES, series)
    page.get_by_role("button", name="Start").click()
    settle(page)


def _card(page: object, run_name: str, owner: str) -> object:
    """The job card of the jobs panel (the innermost block holding the run name and its owner)."""
    blocks = page.locator("[data-testid='stVerticalBlock']")
    return blocks.filter(has_text=run_name).filter(has_text=f"by {owner}").last


def _wait_text(locator: object, pattern: str, timeout_s: float = 60) -> str:
    """Wait until the locator's text matches ``pattern`` (the jobs panel refreshes every 2 s)."""
    deadline = time.time() + timeout_s
    text = ""
    while time.time() < deadline:
        try:
            text = locator.inner_text(timeout=5_000)
        except Exception:  # noqa: BLE001 - the fragment re-rendered the card under us: read it again
            text = ""
        if re.search(pattern, text):
            return text
        time.sleep(0.5)
    raise AssertionError(f"never matched {pattern!r}; last text: {text!r}")


def _cancel_buttons(locator: object) -> int:
    return locator.get_by_role("button", name="Cancel").count()


def _alice_occupies_the_runner(browser: object, url: str) -> object:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    _login(page, url, "run", "alice")
    _start(page, "alice-broken", "s-broken")  # fails at once: its log is hers to read
    broken = _card(page, "alice-broken", "alice")
    _wait_text(broken, f"The job failed[\\s\\S]*{LOG_SECRET}")  # the owner sees the log tail (drawn after the error)
    _start(page, "alice-long", "s-long")
    _wait_text(_card(page, "alice-long", "alice"), r"· running · by alice")
    assert _cancel_buttons(_card(page, "alice-long", "alice")) == 1  # hers to cancel
    no_exception(page)
    return page


def _bob_saves_pairs(page: object, url: str, tmp_path: Path) -> None:
    _login(page, url, "pairs", "bob")
    pairs = tmp_path / "bob_pairs.csv"
    pairs.write_text(PAIRS_CSV)
    page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(str(pairs))
    page.get_by_text("ready to save").first.wait_for(timeout=60_000)
    settle(page)
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved as task set").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Use it on the Run page").click()
    page.get_by_text("Run an analysis").first.wait_for(timeout=60_000)
    settle(page)
    no_exception(page)


def test_two_users_share_one_runner(shared_server: tuple[str, Path], tmp_path: Path) -> None:
    url, cache = shared_server
    with chromium() as browser:
        alice = _alice_occupies_the_runner(browser, url)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        _bob_saves_pairs(page, url, tmp_path)
        _start(page, "bob-run", "s-bob")

        mine = _card(page, "bob-run", "bob")
        text = _wait_text(mine, r"waiting for a free runner: position 1 on (cpu|cuda:0)")
        assert "starts in about 2 min" in text  # behind Alice's job, whose runner reports 120 s left
        theirs = _card(page, "alice-long", "alice")
        assert "running" in theirs.inner_text()
        assert _cancel_buttons(mine) == 1 and _cancel_buttons(theirs) == 0  # no Cancel on Alice's job
        screenshot(page, "shared_bob_queued")

        # Alice's failed job: Bob sees that it failed, but not its log
        broken = _card(page, "alice-broken", "alice")
        assert "The job failed" in broken.inner_text()
        assert broken.locator("[data-testid='stCode']").count() == 0
        assert LOG_SECRET not in page.locator("body").inner_text()
        assert "stand-in runner stops here" not in page.locator("body").inner_text()  # nor its last line

        mine.get_by_role("button", name="Cancel").click()
        _wait_text(_card(page, "bob-run", "bob"), r"· cancelled · by bob")
        settle(page)
        assert _cancel_buttons(page.locator("[data-testid='stMain']")) == 0  # nothing left Bob may cancel
        assert "running" in _card(page, "alice-long", "alice").inner_text()
        no_exception(page)
        screenshot(page, "shared_bob_cancelled")

        # behind the page, the jobs refuse Bob too, and Alice's job still holds the runner
        by_name = {s.name: s for s in jobs.list_jobs(cache)}
        bob = SimpleNamespace(name="bob", is_admin=False)
        for action in (jobs.cancel_job, jobs.log_tail):
            with pytest.raises(jobs.JobNotAllowed):
                action(by_name["alice-long"].id, cache, user=bob)
        assert by_name["alice-long"].alive and by_name["alice-long"].owner == "alice"
        assert by_name["bob-run"].state == "cancelled" and not by_name["bob-run"].alive
        assert "running" in _card(alice, "alice-long", "alice").inner_text()
        # Bob's saved pairs are in his own folder: his Run page offers them, Alice's (rerun) does not
        assert list((cache / "tasksets" / "bob").glob("*.csv")) and not list((cache / "tasksets").glob("*.csv"))
        assert "Your saved task sets" in page.locator("[data-testid='stMain']").inner_text()
        _fill(alice, "Run name", "alice-again")
        assert "Your saved task sets" not in alice.locator("[data-testid='stMain']").inner_text()
        # the result of Alice's saved pairs is listed to her, not to Bob (its sentences are hers)
        for who in (page, alice):
            who.locator("[data-testid='stSidebarNav'] a", has_text="Task space").first.click()
            settle(who)
        bob_text = page.locator("[data-testid='stMain']").inner_text()
        assert "no task space is in the cache" in bob_text and "alice/private" not in bob_text
        assert PRIVATE_SECRET not in page.content()
        alice.wait_for_selector(".js-plotly-plot", timeout=60_000)
        assert "alice%2Fprivate" in alice.url  # her only space is the one drawn
        no_exception(page)
        no_exception(alice)

    _stop_all_jobs(cache)
    assert not any(s.alive for s in jobs.list_jobs(cache))
