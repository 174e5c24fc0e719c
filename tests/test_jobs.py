"""Background jobs: start, join, progress, cancel, failure, survival of the starting process."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from precompute import jobs
from taskspace_app.auth import User

ALICE = User("alice", is_admin=False)

# a stand-in runner: writes progress like precompute, handles SIGTERM as "cancelled"
FAKE_RUNNER = r"""
import json, signal, sys, time
prog, n, fail = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "fail"
def write(state, done, msg=""):
    with open(prog + ".tmp", "w") as f:
        json.dump({"state": state, "done": done, "total": n, "by_type": {"tune": [done, n]}, "eta_s": n - done,
                   "message": msg, "updated": time.time()}, f)
    import os; os.replace(prog + ".tmp", prog)
def on_term(*a):
    write("cancelled", -1, "cancelled"); sys.exit(130)
signal.signal(signal.SIGTERM, on_term)
for i in range(n):
    write("running", i, f"unit {i}")
    print(f"unit {i}", flush=True)
    time.sleep(0.1)
if fail:
    print("Traceback: something broke in unit 3", flush=True); sys.exit(2)
write("done", n, "finished")
"""


@pytest.fixture()
def fake(tmp_path: Path) -> list[str]:
    script = tmp_path / "fake_runner.py"
    script.write_text(FAKE_RUNNER)
    return [sys.executable, str(script), "{progress}"]


def _wait(jid: str, cache: Path, states: tuple[str, ...], timeout: float = 20.0) -> jobs.JobStatus:
    t0 = time.time()
    while time.time() - t0 < timeout:
        s = jobs.job_status(jid, cache)
        if s is not None and s.state in states and (s.state not in jobs.FINAL_STATES or not s.alive):
            return s
        time.sleep(0.1)
    raise AssertionError(f"job {jid} did not reach {states}: {jobs.job_status(jid, cache)}")


CONFIG = {"name": "test", "models": [{"name": "smollm2-135m"}], "tasks": ["builtin:a"], "methods": ["transfer"]}


def test_job_id_is_canonical() -> None:
    a = {"name": "x", "methods": ["transfer"], "probe": {"n_tune": 1, "n_eval": 2}}
    b = {"probe": {"n_eval": 2, "n_tune": 1}, "methods": ["transfer"], "name": "x"}
    assert jobs.job_id(a) == jobs.job_id(b)
    # the run name is not content: the same plan under another name joins the same job
    assert jobs.job_id(a) == jobs.job_id({**a, "name": "y"})
    assert jobs.job_id(a) != jobs.job_id({**a, "methods": ["gradient"]})


def test_run_to_done_and_join(tmp_path: Path, fake: list[str]) -> None:
    status, joined = jobs.start_job(CONFIG, tmp_path, command=[*fake, "8", "ok"], user=ALICE)
    assert not joined
    again, joined2 = jobs.start_job(CONFIG, tmp_path, command=[*fake, "8", "ok"], user=ALICE)
    assert joined2 and again.id == status.id  # a second click joins the running job
    d = Path(status.directory)
    assert (d / "config.yaml").exists() and (d / "pid").exists()
    done = _wait(status.id, tmp_path, ("done",))
    assert done.done == 8 and done.total == 8 and done.returncode == 0
    assert "unit 7" in jobs.log_tail(status.id, tmp_path, user=ALICE)
    assert [s.id for s in jobs.list_jobs(tmp_path)] == [status.id]
    assert jobs.load_config(status.id, tmp_path)["name"] == "test"


def test_cancel(tmp_path: Path, fake: list[str]) -> None:
    status, _ = jobs.start_job(CONFIG, tmp_path, command=[*fake, "200", "ok"], user=ALICE)
    _wait(status.id, tmp_path, ("running",))
    assert jobs.cancel_job(status.id, tmp_path, user=ALICE)
    s = _wait(status.id, tmp_path, ("cancelled",))
    assert not s.alive
    assert not jobs.cancel_job(status.id, tmp_path, user=ALICE)  # nothing left to cancel


def test_failure_shows_message_and_log(tmp_path: Path, fake: list[str]) -> None:
    status, _ = jobs.start_job(CONFIG, tmp_path, command=[*fake, "4", "fail"], user=ALICE)
    s = _wait(status.id, tmp_path, ("failed",))
    assert s.returncode == 2
    assert "exit code 2" in s.message and "something broke" in s.message
    assert "Traceback" in jobs.log_tail(status.id, tmp_path, user=ALICE)


def test_runner_crash_before_progress(tmp_path: Path) -> None:
    status, _ = jobs.start_job(
        CONFIG, tmp_path, command=[sys.executable, "-c", "raise SystemExit('bad config')"], user=ALICE
    )
    s = _wait(status.id, tmp_path, ("failed",))
    assert "bad config" in s.message


def test_restart_after_finish(tmp_path: Path, fake: list[str]) -> None:
    first, _ = jobs.start_job(CONFIG, tmp_path, command=[*fake, "2", "ok"], user=ALICE)
    _wait(first.id, tmp_path, ("done",))
    second, joined = jobs.start_job(CONFIG, tmp_path, command=[*fake, "2", "ok"], user=ALICE)
    assert not joined and second.id == first.id
    _wait(second.id, tmp_path, ("done",))
    assert (Path(second.directory) / "log.prev.txt").exists()


def test_status_of_missing_job(tmp_path: Path) -> None:
    assert jobs.job_status("nope", tmp_path) is None
    assert jobs.list_jobs(tmp_path) == []


def test_job_survives_without_parent_handle(tmp_path: Path, fake: list[str]) -> None:
    """Status comes from the pid file and progress file, not from the Popen handle (page reloads)."""
    status, _ = jobs.start_job(CONFIG, tmp_path, command=[*fake, "30", "ok"], user=ALICE)
    jobs._CHILDREN.clear()  # as after a server restart: no handle on the process
    s = _wait(status.id, tmp_path, ("running",))
    assert s.alive
    jobs.cancel_job(status.id, tmp_path, user=ALICE)
    _wait(status.id, tmp_path, ("cancelled",))


def test_plan_reports_runner_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "m.py"
    script.write_text("import json; print(json.dumps({'units_total': 3, 'units_cached': 1, 'units_todo': 2}))")
    monkeypatch.setattr(jobs, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(jobs.sys, "executable", sys.executable)
    # a module named precompute in the temp root that prints a plan
    pkg = tmp_path / "precompute"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(script.read_text())
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert jobs.plan(CONFIG, tmp_path)["units_todo"] == 2
    (pkg / "__main__.py").write_text("import sys; sys.exit('error: no such paradigm foo')")
    with pytest.raises(jobs.JobError, match="no such paradigm foo"):
        jobs.plan(CONFIG, tmp_path)
    assert json.loads(json.dumps(CONFIG))  # config untouched
