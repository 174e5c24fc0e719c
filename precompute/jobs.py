"""Background ``precompute`` jobs the app starts, joins, queues, polls and cancels (no Streamlit here).

A job is identified by its resolved content (:func:`job_id`: the config without its run
name, with every saved set pinned to a version and every pair file to its bytes), so two
clicks on the same plan, by anyone and under any run name, join one job. Its directory
``<cache>/jobs/<id>/`` holds ``config.yaml``, ``command.json``, ``job.json`` (name, owner,
device, queue times, plan ETA), ``progress.json`` (written by the runner), ``log.txt``
(stdout + stderr), ``pid`` (pid and start time of the job's wrapper process), ``rc`` (exit
code, when it ended) and, while it waits for a free runner, ``queued`` (see
:mod:`precompute.job_queue`). Cancel = SIGTERM to the job's process group (the runner
handles it and writes state ``cancelled``), or removal from the queue while it waits.
Only a job's owner or an admin may cancel it or read its log.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from precompute import job_process as _proc
from precompute.job_process import REPO_ROOT, read_json, runner_env
from precompute.job_queue import device_slot, enqueue, positions, promote, promote_locked, queue_lock, withdraw_locked
from taskspace_core.paths import cache_dir, jobs_dir
from taskspace_core.records import FINAL_STATES, PlanSummary, ProgressRecord
from taskspace_core.store import canonical

__all__ = [
    "FINAL_STATES",
    "REPO_ROOT",
    "JobError",
    "JobNotAllowed",
    "JobStatus",
    "cancel_job",
    "job_id",
    "job_status",
    "jobs_root",
    "list_jobs",
    "load_config",
    "log_tail",
    "may_manage",
    "plan",
    "promote",
    "resolve_config",
    "runner_command",
    "start_job",
]
_CHILDREN = _proc.CHILDREN  # wrappers started by this process (tests clear it to act as after a restart)


class JobError(RuntimeError):
    """A job could not be planned or started; the message says why."""


class JobNotAllowed(JobError, PermissionError):
    """The user may not do this to another user's job."""


class Requester(Protocol):
    """Who asks (``taskspace_app.auth.User`` or anything with these two fields)."""

    name: str
    is_admin: bool


@dataclass
class JobStatus:
    """What the app shows about a job."""

    id: str
    name: str
    state: str  # queued | starting | running | done | failed | cancelled
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
    owner: str = ""
    device: str = ""
    queued_at: float = 0.0
    position: int | None = None  # place in its device's queue while waiting (1 = next)
    starts_in_s: float | None = None  # estimated seconds until a waiting job starts

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def may_manage(status: JobStatus, user: Requester) -> bool:
    """Whether ``user`` may cancel the job or read its log (its owner or an admin)."""
    return bool(user.is_admin) or (bool(status.owner) and user.name == status.owner)


def _source_identity(spec: str) -> str:
    """A task source as content: saved sets and pair files by the hash of their bytes."""
    from taskspace_core import tasksets
    from taskspace_core.sources import PAIR_FILE_SUFFIXES

    kind, _, rest = spec.strip().partition(":")
    path: Path | None = None
    if kind == "set":
        saved = tasksets.resolve(rest)
        path = saved.path if saved is not None else None
    elif kind == "file" or spec.strip().lower().endswith(PAIR_FILE_SUFFIXES):
        path = Path(rest if kind == "file" else spec.strip())
    if path is None or not path.is_file():
        return spec
    st = path.stat()
    return f"{spec}#sha={_file_hash(str(path.resolve()), st.st_mtime_ns, st.st_size)}"


@functools.lru_cache(maxsize=256)
def _file_hash(path: str, mtime_ns: int, size: int) -> str:
    """A file's hash, once per version of it (the Run page asks for the job id on every rerun)."""
    from taskspace_core import tasksets

    return tasksets.file_hash(Path(path))


def resolve_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every ``set:<name>`` pinned to its latest version (``set:<name>@vN``),
    so a queued job runs the content it was started with even if the set is replaced."""
    from taskspace_core import tasksets

    tasks = []
    for spec in config.get("tasks") or []:
        kind, _, rest = str(spec).partition(":")
        saved = tasksets.resolve(rest) if kind == "set" and rest else None
        tasks.append(f"set:{saved.pinned}" if saved is not None else spec)
    return {**config, "tasks": tasks} if "tasks" in config else dict(config)


def job_id(config: dict[str, Any]) -> str:
    """Hash of the resolved content: the canonical config without its run name, task sources
    by content. Identical plans share one id whatever they are called."""
    resolved = resolve_config(config)
    ident = {k: v for k, v in resolved.items() if k != "name"}
    ident["tasks"] = [_source_identity(str(s)) for s in resolved.get("tasks") or []]
    return hashlib.sha256(canonical(ident).encode()).hexdigest()[:16]


def jobs_root(cache: str | Path | None = None) -> Path:
    return jobs_dir(cache)


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


def plan(config: dict[str, Any], cache: str | Path | None = None, timeout: float = 300.0) -> PlanSummary:
    """The runner's dry-run plan of ``config`` (units total/cached/to do, estimated seconds).

    Never loads model weights (``--no-weights``): this runs inside a page request.

    Raises :class:`JobError` with the runner's last error line when it cannot plan.
    """
    root = Path(cache if cache is not None else cache_dir())
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        cmd = [sys.executable, "-m", "precompute", "run", "--config", str(cfg), "--dry-run", "--json", "--no-weights"]
        try:
            res = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, env=runner_env(root)
            )
        except subprocess.TimeoutExpired:
            raise JobError(f"planning took longer than {timeout:.0f} s") from None
    for line in reversed(res.stdout.strip().splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError, TypeError):
                return PlanSummary.from_json(line)
    err = (res.stderr.strip().splitlines() or res.stdout.strip().splitlines() or ["no output"])[-1]
    raise JobError(f"the runner could not plan this config: {err}")


def job_status(
    jid: str, cache: str | Path | None = None, queue: dict[str, tuple[int, float | None]] | None = None
) -> JobStatus | None:
    """Status of a job from its files and pid liveness; None if there is no such job.

    ``queue`` (from :func:`precompute.job_queue.positions`) saves a rescan when listing."""
    d = jobs_root(cache) / jid
    if not (d / "config.yaml").exists():
        return None
    prog = ProgressRecord.read(d / "progress.json") or ProgressRecord()
    meta = read_json(d / "job.json")
    alive = _proc.alive(d)
    rc: int | None = None
    with contextlib.suppress(OSError, ValueError):
        rc = int((d / "rc").read_text().strip())
    waiting = (d / "queued").exists()
    state = "queued" if waiting else prog.state
    if not waiting and not alive and state not in FINAL_STATES:
        # the wrapper is gone without a final state: crashed or killed hard
        state = "cancelled" if (d / "cancel").exists() else ("done" if rc == 0 else "failed")
    place = (queue if queue is not None else positions(jobs_root(cache))).get(jid) if waiting else None
    return JobStatus(
        id=jid,
        name=str(meta.get("name", jid)),
        state=state,
        done=int(prog.done or 0),
        total=int(prog.total or 0),
        by_type={k: list(v) for k, v in (prog.by_type or {}).items()},
        eta_s=prog.eta_s if not waiting else meta.get("plan_eta_s"),
        message=str(prog.message or ""),
        updated=float(prog.updated or 0),
        started=float(meta.get("started", 0) or 0),
        alive=alive,
        returncode=rc,
        directory=str(d),
        owner=str(meta.get("owner", "")),
        device=str(meta.get("device", "")),
        queued_at=float(meta.get("queued", 0) or 0),
        position=place[0] if place else None,
        starts_in_s=place[1] if place else None,
    )


def _prepare(d: Path, config: dict[str, Any], command: list[str] | None) -> None:
    """Fresh job files in ``d`` (the previous attempt's log kept as ``log.prev.txt``)."""
    d.mkdir(parents=True, exist_ok=True)
    for stale in ("progress.json", "rc", "cancel", "pid", "queued"):
        (d / stale).unlink(missing_ok=True)
    if (d / "log.txt").exists():
        (d / "log.txt").replace(d / "log.prev.txt")
    cfg, prog = d / "config.yaml", d / "progress.json"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    cmd = [c.format(config=cfg, progress=prog) for c in command] if command else runner_command(cfg, prog)
    (d / "command.json").write_text(json.dumps(cmd), encoding="utf-8")


def start_job(
    config: dict[str, Any],
    cache: str | Path | None = None,
    command: list[str] | None = None,
    *,
    user: Requester,
    eta_s: float | None = None,
) -> tuple[JobStatus, bool]:
    """Queue ``config`` as a job owned by ``user`` and start it if its device has a free
    runner, or join the job of the same content that runs or waits already.

    Returns (status, joined). ``eta_s`` (the plan's estimate) feeds the queue's start
    estimates. ``command`` overrides the runner command line (tests); it may contain
    ``{config}`` and ``{progress}`` placeholders.
    """
    from taskspace_core import tasksets

    for spec in config.get("tasks") or []:
        kind, _, rest = str(spec).partition(":")
        if kind == "set" and not tasksets.may_read(rest, user.name, bool(user.is_admin)):
            raise JobError(f"the task set '{rest}' is not yours: run a set you saved (Your pairs page)")
    root = Path(cache if cache is not None else cache_dir())
    resolved = resolve_config(config)
    jid = job_id(resolved)
    d = jobs_root(root) / jid
    with queue_lock(jobs_root(root)):  # check-and-start is atomic across sessions and processes
        existing = job_status(jid, root)
        if existing is not None and (existing.alive or existing.state == "queued"):
            return existing, True
        _prepare(d, resolved, command)
        meta = {
            "name": str(config.get("name", jid)),
            "owner": user.name,
            "device": device_slot(str(config.get("device", "auto"))),
            "plan_eta_s": eta_s,
        }
        enqueue(d, meta)
        promote_locked(root)
    status = job_status(jid, root)
    assert status is not None
    return status, False


def _owned(jid: str, cache: str | Path | None, user: Requester, action: str) -> JobStatus:
    status = job_status(jid, cache)
    if status is None:
        raise JobError(f"there is no job {jid}")
    if not may_manage(status, user):
        raise JobNotAllowed(f"only {status.owner or 'its owner'} or an admin can {action} job {jid}")
    return status


def cancel_job(jid: str, cache: str | Path | None = None, *, user: Requester) -> bool:
    """Cancel a waiting or running job; True if it was waiting or a live job was signalled.

    Raises :class:`JobNotAllowed` unless ``user`` owns the job or is an admin."""
    _owned(jid, cache, user, "cancel")
    d = jobs_root(cache) / jid
    with queue_lock(jobs_root(cache)):
        if withdraw_locked(d):
            return True
    return _proc.signal_group(d)


def list_jobs(cache: str | Path | None = None) -> list[JobStatus]:
    """All jobs in the cache, newest first (waiting ones by their queue time)."""
    root = jobs_root(cache)
    if not root.is_dir():
        return []
    queue = positions(root)
    out = [s for d in root.iterdir() if d.is_dir() and (s := job_status(d.name, cache, queue)) is not None]
    return sorted(out, key=lambda s: -max(s.started, s.queued_at))


def log_tail(
    jid: str, cache: str | Path | None = None, n_lines: int = 40, max_bytes: int = 64_000, *, user: Requester
) -> str:
    """The last lines of a job's log; raises :class:`JobNotAllowed` unless ``user`` may read it."""
    _owned(jid, cache, user, "read the log of")
    return _proc.tail(jobs_root(cache) / jid / "log.txt", n_lines, max_bytes)


def load_config(jid: str, cache: str | Path | None = None) -> dict[str, Any]:
    try:
        return yaml.safe_load((jobs_root(cache) / jid / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _wrapper_main(d: Path) -> int:
    """The wrapper process: run the job, then start the next waiting jobs (its slot is free)."""
    rc = _proc.wrap(d)
    with contextlib.suppress(OSError):
        promote(d.parent.parent)
    return rc


if __name__ == "__main__":  # python -m precompute.jobs JOBDIR
    sys.exit(_wrapper_main(Path(sys.argv[1])))
