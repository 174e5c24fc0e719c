"""The job queue of one box: at most K runners per device, the rest wait in order.

A job waits while its folder holds a ``queued`` marker; its ``job.json`` says its device,
when it was queued and the plan's estimated seconds. Everything is on disk, so the queue
survives a restart of the app server. Every change to the queue (enqueue, promote,
cancel) happens under one exclusive ``fcntl.flock`` on ``<cache>/jobs/.lock``: two
sessions or processes pressing Start at once are serialised, and promoting is
idempotent. Jobs are promoted by the wrapper of a job that ends, by ``start_job`` and by
any page load of the app (:func:`promote`).
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from precompute.job_process import alive, launch, read_json, write_final, write_json
from taskspace_core.paths import jobs_dir

QUEUED = "queued"  # marker file of a waiting job


@contextlib.contextmanager
def queue_lock(root: Path) -> Iterator[None]:
    """Exclusive lock on the queue of ``root`` (a jobs folder), across processes and threads."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # per open file: threads of one server exclude each other too
        yield
    finally:
        os.close(fd)  # closing releases the lock


def gpu_count() -> int:
    """GPUs this box shows, without importing torch: ``CUDA_VISIBLE_DEVICES``, else the driver's
    list, else the ``/dev/nvidiaN`` nodes (what a container with the GPU runtime sees)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([v for v in visible.split(",") if v.strip() and v.strip() != "-1"])
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir():
        return len(list(gpus.iterdir()))
    return len([p for p in Path("/dev").glob("nvidia[0-9]*") if p.name[6:].isdigit()])


def device_slot(device: str | None) -> str:
    """The device a config's runner occupies: ``cpu`` or ``cuda:N`` (``auto``/``cuda`` = the first GPU)."""
    dev = (device or "auto").strip().lower()
    if dev == "cpu" or (dev in ("auto", "cuda") and gpu_count() == 0):
        return "cpu"
    if dev in ("auto", "cuda"):
        return "cuda:0"
    return dev


def max_runners() -> int:
    """Runners at a time per device: ``$TASKSPACE_MAX_RUNNERS`` (default 1)."""
    try:
        return max(1, int(os.environ.get("TASKSPACE_MAX_RUNNERS", "1")))
    except ValueError:
        return 1


@dataclass(frozen=True)
class Entry:
    """One job as the queue sees it."""

    id: str
    directory: Path
    device: str
    queued_at: float
    plan_eta_s: float | None
    waiting: bool
    running: bool
    eta_s: float | None  # remaining seconds of a running job


def _entry(d: Path) -> Entry | None:
    meta = read_json(d / "job.json")
    if not meta:
        return None
    waiting = (d / QUEUED).exists()
    running = not waiting and not (d / "rc").exists() and alive(d)  # a wrapper that wrote rc frees its slot
    eta = read_json(d / "progress.json").get("eta_s") if running else None
    plan_eta = meta.get("plan_eta_s")
    return Entry(
        d.name,
        d,
        str(meta.get("device", "cpu")),
        float(meta.get("queued", 0) or 0),
        float(plan_eta) if plan_eta is not None else None,
        waiting,
        running,
        float(eta) if eta is not None else (float(plan_eta) if running and plan_eta is not None else None),
    )


def entries(root: Path) -> list[Entry]:
    """Waiting and running jobs of a jobs folder."""
    if not root.is_dir():
        return []
    found = (_entry(d) for d in root.iterdir() if d.is_dir())
    return [e for e in found if e is not None and (e.waiting or e.running)]


def waiting_order(all_entries: list[Entry], device: str) -> list[Entry]:
    return sorted((e for e in all_entries if e.waiting and e.device == device), key=lambda e: (e.queued_at, e.id))


def positions(root: Path) -> dict[str, tuple[int, float | None]]:
    """Per waiting job: (1-based place in its device's queue, estimated seconds until it starts).

    Simulates the device's K slots: each starts free when its running job's ETA runs out, and
    each waiting job takes the first free slot for its plan's estimated time. Unknown ETAs
    make the estimates of the jobs behind them unknown (None).
    """
    all_entries = entries(root)
    k = max_runners()
    out: dict[str, tuple[int, float | None]] = {}
    for device in {e.device for e in all_entries if e.waiting}:
        slots = [e.eta_s if e.eta_s is not None else math.inf for e in all_entries if e.running and e.device == device]
        slots = sorted(slots)[:k] + [0.0] * max(0, k - len(slots))
        heapq.heapify(slots)
        for place, e in enumerate(waiting_order(all_entries, device), start=1):
            start = heapq.heappop(slots)
            out[e.id] = (place, None if math.isinf(start) else round(start, 1))
            heapq.heappush(slots, start + (e.plan_eta_s if e.plan_eta_s is not None else math.inf))
    return out


def enqueue(d: Path, meta: dict[str, Any]) -> None:
    """Mark the prepared job folder ``d`` as waiting (call under :func:`queue_lock`)."""
    write_json(d / "job.json", {**meta, "queued": time.time(), "started": 0})
    (d / QUEUED).write_text(str(time.time()))


def promote_locked(cache: Path) -> list[str]:
    """Start waiting jobs while their device has a free slot (call under :func:`queue_lock`)."""
    root = jobs_dir(cache)
    all_entries = entries(root)
    k = max_runners()
    started = []
    for device in sorted({e.device for e in all_entries if e.waiting}):
        free = k - sum(1 for e in all_entries if e.running and e.device == device)
        for e in waiting_order(all_entries, device)[: max(0, free)]:
            meta = read_json(e.directory / "job.json")
            write_json(e.directory / "job.json", {**meta, "started": time.time()})
            (e.directory / QUEUED).unlink(missing_ok=True)
            try:
                launch(e.directory, cache)
            except OSError as exc:
                write_final(e.directory / "progress.json", "failed", f"the job could not be started: {exc}")
                continue
            started.append(e.id)
    return started


def promote(cache: str | Path | None = None) -> list[str]:
    """Start waiting jobs if slots are free; returns their ids. Cheap when nothing waits."""
    root = jobs_dir(cache)
    if not any(root.glob(f"*/{QUEUED}")):
        return []
    with queue_lock(root):
        return promote_locked(root.parent)


def withdraw_locked(d: Path) -> bool:
    """Take a waiting job out of the queue as cancelled; False if it was not waiting."""
    if not (d / QUEUED).exists():
        return False
    (d / QUEUED).unlink()
    (d / "cancel").write_text(str(time.time()))
    write_final(d / "progress.json", "cancelled", "cancelled while waiting in the queue")
    return True
