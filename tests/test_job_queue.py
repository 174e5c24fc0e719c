"""The job queue: one runner per device, waiting jobs in order, atomic start, owners, restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from precompute import jobs
from precompute.job_queue import positions
from taskspace_app.auth import User
from tests.test_jobs import FAKE_RUNNER
from tests.test_jobs import _wait as wait

ROOT = Path(__file__).resolve().parents[1]
ALICE, BOB, ADMIN = User("alice", False), User("bob", False), User("root", True)
CONFIG = {"name": "q", "models": [{"name": "m"}], "tasks": ["builtin:a"], "methods": ["transfer"], "device": "cpu"}

# the fake runner, each start recorded as one line of the file named by its fourth argument
COUNTING = "import sys\nopen(sys.argv[4], 'a').write('run\\n')\n" + FAKE_RUNNER


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("TASKSPACE_MAX_RUNNERS", "1")
    (tmp_path / "runner.py").write_text(COUNTING)
    return [sys.executable, str(tmp_path / "runner.py"), "{progress}"]


def cfg(**changes: object) -> dict:
    return {**CONFIG, **changes}


def start(tmp: Path, runner: list[str], units: int, user: User = ALICE, eta: float | None = None, **changes: object):
    return jobs.start_job(cfg(**changes), tmp, [*runner, str(units), "ok", str(tmp / "runs.txt")], user=user, eta_s=eta)


def runs(tmp: Path) -> int:
    path = tmp / "runs.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


STARTER = """
import json, sys, time
from precompute import jobs
from taskspace_app.auth import User
cache, config, cmd, go = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4])
while time.time() < go:  # both processes leave this line at the same instant
    time.sleep(0.0002)
status, joined = jobs.start_job(config, cache, cmd, user=User(config["name"], False))
print(json.dumps({"id": status.id, "joined": joined}))
"""


def test_two_processes_starting_the_same_plan_get_one_runner(tmp_path: Path, runner: list[str]) -> None:
    cmd = json.dumps([*runner, "10", "ok", str(tmp_path / "runs.txt")])
    go = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, str(tmp_path), json.dumps(cfg(name=name)), cmd, str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("alice", "bob")  # other run names, same content
    ]
    out = [json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in procs]
    assert out[0]["id"] == out[1]["id"]
    assert sorted(o["joined"] for o in out) == [False, True]
    wait(out[0]["id"], tmp_path, ("done",))
    assert runs(tmp_path) == 1
    assert [s.id for s in jobs.list_jobs(tmp_path)] == [out[0]["id"]]


def test_sessions_of_one_server_starting_at_once_get_one_job(tmp_path: Path, runner: list[str]) -> None:
    """Browser sessions are threads of one server process: the lock must hold between threads too."""
    import threading

    barrier = threading.Barrier(4)
    results: list[tuple[str, bool]] = []

    def press_start(name: str) -> None:
        barrier.wait()
        status, joined = start(tmp_path, runner, 5, name=name)
        results.append((status.id, joined))

    threads = [threading.Thread(target=press_start, args=(f"run{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({jid for jid, _ in results}) == 1 and sorted(j for _, j in results) == [False, True, True, True]
    wait(results[0][0], tmp_path, ("done",))
    assert runs(tmp_path) == 1


def test_second_job_waits_with_position_and_estimate_then_starts(tmp_path: Path, runner: list[str]) -> None:
    a, _ = start(tmp_path, runner, 30)
    wait(a.id, tmp_path, ("running",))
    b, joined = start(tmp_path, runner, 2, eta=100.0, methods=["gradient"])
    c, _ = start(tmp_path, runner, 2, eta=50.0, methods=["transfer", "gradient"])
    assert not joined and b.state == "queued" and c.state == "queued"
    assert (b.position, c.position) == (1, 2)
    before = jobs.job_status(a.id, tmp_path).eta_s  # the fake runner's ETA: one "second" per unit left
    queue = positions(jobs.jobs_root(tmp_path))
    after = jobs.job_status(a.id, tmp_path).eta_s
    assert before >= queue[b.id][1] >= after  # b starts when a's remaining time runs out
    assert queue[c.id][1] == pytest.approx(queue[b.id][1] + 100.0)  # behind b for b's planned time
    assert runs(tmp_path) == 1  # only a runs
    assert start(tmp_path, runner, 2, user=BOB, eta=100.0, methods=["gradient"], name="other")[1]  # joins b
    wait(a.id, tmp_path, ("done",))
    wait(b.id, tmp_path, ("done",))  # a's wrapper started b when a ended, then b's started c
    wait(c.id, tmp_path, ("done",))
    assert runs(tmp_path) == 3


def test_other_devices_run_at_once(tmp_path: Path, runner: list[str]) -> None:
    a, _ = start(tmp_path, runner, 30)
    b, _ = start(tmp_path, runner, 30, device="cuda:1")
    assert a.state != "queued" and b.state != "queued"
    for s in (a, b):
        jobs.cancel_job(s.id, tmp_path, user=ALICE)
        wait(s.id, tmp_path, ("cancelled",))


def test_cancel_and_log_only_for_owner_or_admin(tmp_path: Path, runner: list[str]) -> None:
    a, _ = start(tmp_path, runner, 100)
    b, _ = start(tmp_path, runner, 2, methods=["gradient"])
    wait(a.id, tmp_path, ("running",))
    for jid in (a.id, b.id):
        with pytest.raises(jobs.JobNotAllowed, match="only alice or an admin"):
            jobs.cancel_job(jid, tmp_path, user=BOB)
        with pytest.raises(jobs.JobNotAllowed):
            jobs.log_tail(jid, tmp_path, user=BOB)
    assert jobs.job_status(a.id, tmp_path).state == "running"
    assert jobs.job_status(b.id, tmp_path).state == "queued"
    assert "unit" in jobs.log_tail(a.id, tmp_path, user=ADMIN)
    assert jobs.cancel_job(b.id, tmp_path, user=ALICE)  # cancelled while waiting: it never runs
    assert jobs.job_status(b.id, tmp_path).state == "cancelled"
    assert jobs.cancel_job(a.id, tmp_path, user=ADMIN)
    wait(a.id, tmp_path, ("cancelled",))
    time.sleep(0.5)
    assert runs(tmp_path) == 1 and jobs.job_status(b.id, tmp_path).state == "cancelled"


LISTER = """
import json, sys
from precompute import jobs
print(json.dumps([[s.id, s.state, s.position, s.owner] for s in jobs.list_jobs(sys.argv[1])]))
"""


def test_queue_survives_a_restart(tmp_path: Path, runner: list[str]) -> None:
    a, _ = start(tmp_path, runner, 200)
    b, _ = start(tmp_path, runner, 2, methods=["gradient"])
    wait(a.id, tmp_path, ("running",))
    jobs._CHILDREN.clear()  # this process forgets its children, as a restarted server would
    fresh = subprocess.run([sys.executable, "-c", LISTER, str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert [b.id, "queued", 1, "alice"] in json.loads(fresh.stdout)  # the queue is read back from disk
    os.killpg(int((Path(a.directory) / "pid").read_text().split()[0]), signal.SIGKILL)  # no wrapper to promote
    wait(a.id, tmp_path, ("failed",))
    assert jobs.job_status(b.id, tmp_path).state == "queued"
    promote = f"from precompute import jobs; print(jobs.promote({str(tmp_path)!r}))"
    started = subprocess.run([sys.executable, "-c", promote], cwd=ROOT, capture_output=True, text=True)
    assert b.id in started.stdout  # a page load of a fresh server process starts it
    wait(b.id, tmp_path, ("done",))


def test_device_slots_and_runner_limit(tmp_path: Path, runner: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from precompute.job_queue import device_slot

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert device_slot("auto") == "cpu" and device_slot("cpu") == "cpu"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert device_slot("auto") == device_slot("cuda") == "cuda:0" and device_slot("cuda:1") == "cuda:1"
    monkeypatch.setenv("TASKSPACE_MAX_RUNNERS", "2")
    a, _ = start(tmp_path, runner, 100)
    b, _ = start(tmp_path, runner, 100, methods=["gradient"])
    c, _ = start(tmp_path, runner, 2, eta=50.0, methods=["transfer", "gradient"])
    d, _ = start(tmp_path, runner, 2, methods=[])
    assert [a.state == "queued", b.state == "queued", c.state, d.state] == [False, False, "queued", "queued"]
    assert (c.position, d.position) == (1, 2)
    wait(a.id, tmp_path, ("running",))
    wait(b.id, tmp_path, ("running",))  # two runners at once on one device
    for s in (d, c, b, a):
        jobs.cancel_job(s.id, tmp_path, user=ALICE)
    for s in (a, b):
        wait(s.id, tmp_path, ("cancelled",))
    assert runs(tmp_path) == 2


def test_jobs_panel_offers_cancel_to_the_owner_only(
    tmp_path: Path, runner: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from taskspace_app import jobs_panel

    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path))
    a, _ = start(tmp_path, runner, 300, user=BOB)
    b, _ = start(tmp_path, runner, 2, eta=30.0, methods=["gradient"])
    wait(a.id, tmp_path, ("running",))

    def panel(user: User) -> AppTest:
        monkeypatch.setattr(jobs_panel, "current_user", lambda: user)
        return AppTest.from_file(str(ROOT / "taskspace_app" / "views" / "run.py"), default_timeout=60).run()

    at = panel(ALICE)
    assert not at.exception
    keys = [btn.key for btn in at.button if btn.key.startswith("cancel_")]
    assert keys == [f"cancel_run_{b.id}"]  # alice may cancel her waiting job, not bob's running one
    assert any("position 1" in c.value and "starts in about" in c.value for c in at.caption)
    at.button(key=f"cancel_run_{b.id}").click().run()
    assert jobs.job_status(b.id, tmp_path).state == "cancelled"
    assert [btn.key for btn in panel(ADMIN).button if btn.key.startswith("cancel_")] == [f"cancel_run_{a.id}"]
    jobs.cancel_job(a.id, tmp_path, user=BOB)
    wait(a.id, tmp_path, ("cancelled",))
