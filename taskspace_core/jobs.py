"""Background ``precompute`` jobs the app starts, joins, polls and cancels (no Streamlit here).

A job is identified by a hash of its canonical config, so two clicks on the same plan
join one job. Its directory ``<cache>/jobs/<id>/`` holds ``config.yaml``, ``command.json``,
``progress.json`` (written by the runner), ``log.txt`` (stdout + stderr), ``pid`` (pid
and start time of the job's wrapper process) and ``rc`` (exit code, when it ended).

The wrapper (``python -m taskspace_core.jobs JOBDIR``) runs in its own session, so the
job survives page reloads, browser disconnects and even a restart of the app server; it
waits for the runner, records the exit code and makes sure ``progress.json`` ends in a
final state even when the runner crashed before writing one. Cancel = SIGTERM to the
job's process group (the runner handles it and writes state ``cancelled``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from taskspace_core.paths import cache_dir
from taskspace_core.store import canonical

FINAL_STATES = ("done", "failed", "cancelled")
REPO_ROOT = Path(__file__).resolve().parent.parent
_CHILDREN: dict[str, subprocess.Popen] = {}  # wrappers started by this process; polled to reap zombies


class JobError(RuntimeError):
    """A job could not be planned or started; the message says why."""


@dataclass
class JobStatus:
    """What the app shows about a job."""

    id: str
    name: str
    state: str  # starting | running | done | failed | cancelled
    done: int = 0
    total: int = 0
    by_type: dict[str, list[int]] = field(default_factory=dict)
    eta_s: float | None = None
    message: str = ""
    updated: float = 0.0
    started: float = 0.0
    alive: bool = False
    returncode: int | None = None
    directory: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def job_id(config: dict[str, Any]) -> str:
    """Hash of the canonical config: identical plans share one id."""
    return hashlib.sha256(canonical(config).encode()).hexdigest()[:16]


def jobs_root(cache: str | Path | None = None) -> Path:
    return Path(cache if cache is not None else cache_dir()) / "jobs"


def runner_command(config_path: Path, progress_path: Path) -> list[str]:
    """The precompute command line of a job."""
    return [
        sys.executable,
        "-m",
        "precompute",
        "run",
        "--config",
        str(config_path),
        "--progress-file",
        str(progress_path),
        "--quiet",  # progress goes to the progress file; bars would only fill the log with \r lines
    ]


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TASKSPACE_CACHE"] = str(cache)
    env["PYTHONUNBUFFERED"] = "1"  # the log tail should be current
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads yield the core (taskspace_core.threads)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def plan(config: dict[str, Any], cache: str | Path | None = None, timeout: float = 300.0) -> dict[str, Any]:
    """The runner's dry-run plan of ``config`` (units total/cached/to do, estimated seconds).

    Raises :class:`JobError` with the runner's last error line when it cannot plan.
    """
    root = Path(cache if cache is not None else cache_dir())
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        cmd = [sys.executable, "-m", "precompute", "run", "--config", str(cfg), "--dry-run", "--json"]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, env=_env(root))
        except subprocess.TimeoutExpired:
            raise JobError(f"planning took longer than {timeout:.0f} s") from None
    for line in reversed(res.stdout.strip().splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                return json.loads(line)
    err = (res.stderr.strip().splitlines() or res.stdout.strip().splitlines() or ["no output"])[-1]
    raise JobError(f"the runner could not plan this config: {err}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _pid_record(d: Path) -> tuple[int, float] | None:
    try:
        pid_s, start_s = (d / "pid").read_text().split()[:2]
        return int(pid_s), float(start_s)
    except (OSError, ValueError):
        return None


def _alive(jid: str, d: Path) -> bool:
    """Whether the job's wrapper still runs (pid alive, not a zombie, same start time: no pid reuse)."""
    proc = _CHILDREN.get(jid)
    if proc is not None and proc.poll() is not None:  # reaps our own finished child
        _CHILDREN.pop(jid, None)
        return False
    rec = _pid_record(d)
    if rec is None:
        return False
    import psutil

    pid, started = rec
    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE and abs(p.create_time() - started) < 2.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def job_status(jid: str, cache: str | Path | None = None) -> JobStatus | None:
    """Status of a job from its pid liveness and progress file; None if there is no such job."""
    d = jobs_root(cache) / jid
    if not (d / "config.yaml").exists():
        return None
    prog = _read_json(d / "progress.json")
    meta = _read_json(d / "job.json")
    alive = _alive(jid, d)
    rc: int | None = None
    with contextlib.suppress(OSError, ValueError):
        rc = int((d / "rc").read_text().strip())
    state = str(prog.get("state", "starting"))
    if not alive and state not in FINAL_STATES:
        # the wrapper is gone without a final state: crashed or killed hard
        state = "cancelled" if (d / "cancel").exists() else ("done" if rc == 0 else "failed")
    return JobStatus(
        id=jid,
        name=str(meta.get("name", jid)),
        state=state,
        done=int(prog.get("done", 0) or 0),
        total=int(prog.get("total", 0) or 0),
        by_type={k: list(v) for k, v in (prog.get("by_type") or {}).items()},
        eta_s=prog.get("eta_s"),
        message=str(prog.get("message", "") or ""),
        updated=float(prog.get("updated", 0) or 0),
        started=float(meta.get("started", 0) or 0),
        alive=alive,
        returncode=rc,
        directory=str(d),
    )


def start_job(
    config: dict[str, Any], cache: str | Path | None = None, command: list[str] | None = None
) -> tuple[JobStatus, bool]:
    """Start ``config`` as a background job, or join the live job of the same config.

    Returns (status, joined). ``command`` overrides the runner command line (tests); it
    may contain ``{config}`` and ``{progress}`` placeholders.
    """
    root = Path(cache if cache is not None else cache_dir())
    jid = job_id(config)
    d = jobs_root(root) / jid
    existing = job_status(jid, root)
    if existing is not None and existing.alive:
        return existing, True
    d.mkdir(parents=True, exist_ok=True)
    for stale in ("progress.json", "rc", "cancel", "pid"):
        (d / stale).unlink(missing_ok=True)
    if (d / "log.txt").exists():  # keep the previous attempt's log for reference
        (d / "log.txt").replace(d / "log.prev.txt")
    cfg, prog = d / "config.yaml", d / "progress.json"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    cmd = [c.format(config=cfg, progress=prog) for c in command] if command else runner_command(cfg, prog)
    (d / "command.json").write_text(json.dumps(cmd), encoding="utf-8")
    (d / "job.json").write_text(json.dumps({"name": str(config.get("name", jid)), "started": time.time()}))
    with open(d / "log.txt", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "taskspace_core.jobs", str(d)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=_env(root),
            start_new_session=True,  # own process group: survives the page, cancellable as a group
        )
    _CHILDREN[jid] = proc
    import psutil

    try:
        started = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        started = time.time()
    (d / "pid").write_text(f"{proc.pid} {started}")
    status = job_status(jid, root)
    assert status is not None
    return status, False


def cancel_job(jid: str, cache: str | Path | None = None) -> bool:
    """SIGTERM to the job's process group; True if a live job was signalled."""
    d = jobs_root(cache) / jid
    if not _alive(jid, d):
        return False
    rec = _pid_record(d)
    if rec is None:
        return False
    (d / "cancel").write_text(str(time.time()))
    try:
        os.killpg(rec[0], signal.SIGTERM)  # the wrapper leads its own session: pgid == pid
    except ProcessLookupError:
        return False
    return True


def list_jobs(cache: str | Path | None = None) -> list[JobStatus]:
    """All jobs in the cache, newest first."""
    root = jobs_root(cache)
    if not root.is_dir():
        return []
    out = [s for d in root.iterdir() if d.is_dir() and (s := job_status(d.name, cache)) is not None]
    return sorted(out, key=lambda s: -s.started)


def log_tail(jid: str, cache: str | Path | None = None, n_lines: int = 40, max_bytes: int = 64_000) -> str:
    """The last lines of a job's log (reads only the file's end)."""
    return _tail(jobs_root(cache) / jid / "log.txt", n_lines, max_bytes)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _tail(path: Path, n_lines: int, max_bytes: int = 64_000) -> str:
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


def load_config(jid: str, cache: str | Path | None = None) -> dict[str, Any]:
    try:
        return yaml.safe_load((jobs_root(cache) / jid / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}


# ----------------------------------------------------------------- the wrapper process


def _write_final(prog_path: Path, state: str, message: str) -> None:
    prog = _read_json(prog_path)
    if prog.get("state") in FINAL_STATES:
        return
    prog.update({"state": state, "message": message, "updated": time.time()})
    tmp = prog_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(prog), encoding="utf-8")
    tmp.replace(prog_path)


def _wrap(d: Path) -> int:
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
        _write_final(prog, "cancelled", "cancelled by the user")
    elif rc != 0:
        last = [ln for ln in _tail(d / "log.txt", 5).splitlines() if ln.strip()]
        _write_final(prog, "failed", f"the runner stopped with exit code {rc}" + (f": {last[-1]}" if last else ""))
    else:
        _write_final(prog, "done", "finished")
    (d / "rc").write_text(str(rc))
    return 0


if __name__ == "__main__":  # python -m taskspace_core.jobs JOBDIR
    sys.exit(_wrap(Path(sys.argv[1])))
