"""The processes of a background job: launching its wrapper, liveness, and the wrapper itself.

The wrapper (``python -m precompute.jobs JOBDIR``) runs in its own session, so the job
survives page reloads, browser disconnects and a restart of the app server; it waits for
the runner, records the exit code and makes sure ``progress.json`` ends in a final state
even when the runner crashed before writing one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from taskspace_core import threads
from taskspace_core.records import ProgressRecord

REPO_ROOT = Path(__file__).resolve().parent.parent
CHILDREN: dict[str, subprocess.Popen] = {}  # wrappers started by this process; polled to reap zombies


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically: readers never see half a file."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def runner_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TASKSPACE_CACHE"] = str(cache)
    env["PYTHONUNBUFFERED"] = "1"  # the log tail should be current
    threads.set_wait_policy(env)  # idle OpenMP threads yield the core soon (taskspace_core.threads)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def pid_record(d: Path) -> tuple[int, float] | None:
    try:
        pid_s, start_s = (d / "pid").read_text().split()[:2]
        return int(pid_s), float(start_s)
    except (OSError, ValueError):
        return None


def alive(d: Path) -> bool:
    """Whether the job's wrapper still runs (pid alive, not a zombie, same start time: no pid reuse)."""
    proc = CHILDREN.get(d.name)
    if proc is not None and proc.poll() is not None:  # reaps our own finished child
        CHILDREN.pop(d.name, None)
        return False
    rec = pid_record(d)
    if rec is None:
        return False
    import psutil

    pid, started = rec
    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE and abs(p.create_time() - started) < 2.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def launch(d: Path, cache: Path) -> None:
    """Start the wrapper of the job in ``d`` (its command is in ``command.json``); writes ``pid``."""
    import psutil

    with open(d / "log.txt", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "precompute.jobs", str(d)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=runner_env(cache),
            start_new_session=True,  # own process group: survives the page, cancellable as a group
        )
    CHILDREN[d.name] = proc
    try:
        started = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        started = time.time()
    (d / "pid").write_text(f"{proc.pid} {started}")


def signal_group(d: Path) -> bool:
    """SIGTERM to the job's process group; True if a live job was signalled."""
    rec = pid_record(d)
    if rec is None or not alive(d):
        return False
    (d / "cancel").write_text(str(time.time()))
    try:
        os.killpg(rec[0], signal.SIGTERM)  # the wrapper leads its own session: pgid == pid
    except ProcessLookupError:
        return False
    return True


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def tail(path: Path, n_lines: int, max_bytes: int = 64_000) -> str:
    """The last lines of a log (reads only the file's end)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    # progress bars redraw with \r and cursor escapes: keep what a terminal would show last
    lines = [_ANSI.sub("", ln).split("\r")[-1] if "\r" in ln else _ANSI.sub("", ln) for ln in data.split("\n")]
    lines = [ln.rstrip() for ln in lines]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines[-n_lines:])


def write_final(prog_path: Path, state: str, message: str) -> None:
    prog = ProgressRecord.read(prog_path) or ProgressRecord()
    if not prog.final:
        prog.finished(state, message).write(prog_path)


def wrap(d: Path) -> int:
    """Run the job's command, record its exit code, and leave a final progress state."""
    cmd = json.loads((d / "command.json").read_text(encoding="utf-8"))
    prog = d / "progress.json"
    cancelled = False
    child = subprocess.Popen(cmd, cwd=REPO_ROOT)  # same process group: a group SIGTERM reaches it too

    def on_term(signum: int, frame: object) -> None:
        nonlocal cancelled
        cancelled = True
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        rc = child.wait(timeout=None)
    except KeyboardInterrupt:
        rc = child.wait()
    if cancelled or (d / "cancel").exists():
        write_final(prog, "cancelled", "cancelled by the user")
    elif rc != 0:
        last = [ln for ln in tail(d / "log.txt", 5).splitlines() if ln.strip()]
        write_final(prog, "failed", f"the runner stopped with exit code {rc}" + (f": {last[-1]}" if last else ""))
    else:
        write_final(prog, "done", "finished")
    (d / "rc").write_text(str(rc))
    return 0
