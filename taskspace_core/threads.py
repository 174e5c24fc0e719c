"""How many CPU threads torch should use here, and an OpenMP wait policy that yields the core.

Why: on a small shared box, torch's default (one intra-op thread per core, threads that spin
while they wait) fights any other busy process; FTGD units were measured 4x slower with one
competitor on 2 cores. So the thread count follows the cores this process may actually use
(CPU affinity, cgroup v2 ``cpu.max`` or v1 CFS quota) minus what others keep busy (the 1-minute
load average minus our own share, capped by the threads runnable right now, scaled to our
cores), chosen again every few seconds between units, and idle OpenMP threads spin only briefly
before they sleep (``GOMP_SPINCOUNT``, :data:`SPIN_COUNT`).

Why not ``OMP_WAIT_POLICY=PASSIVE``: it made every FTGD and gradient unit 1.3-1.4x slower on a
quiet 2-core machine (threads sleep at every parallel region of a small model), and it helps
only while two threads share their cores with a competitor, which the re-chosen thread count
avoids (one thread has no team to wait for). ``benchmarks/bench_busy.py --variants`` measures it.

OpenMP reads these variables when torch's runtime loads, i.e. at the first ``import torch``:
:func:`configure_process` must run before that (the CLI entry point does). Nothing here
imports torch at module level. A user's explicit ``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT`` or
``OMP_NUM_THREADS`` is never overridden.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
PROC_STAT = Path("/proc/stat")
_POLICY = {"on": False, "at": 0.0}  # set by configure_process (CLI processes only); time of the last choice
SPIN_COUNT = 10_000  # libgomp spins per wait before sleeping (its default 300,000): as fast when quiet
REFRESH_S = 10.0  # re-choose the thread count between units at most this often
_OWN_SAMPLE: list[tuple[float, float]] = [(time.monotonic(), sum(os.times()[:2]))]  # (wall, cpu) at import


def parse_cpu_max(text: str) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` (``"150000 100000"`` -> 1.5; ``"max ..."`` -> None)."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    period = float(parts[1]) if len(parts) > 1 else 100000.0
    return float(parts[0]) / period if period > 0 else None


def parse_cfs(quota: str, period: str) -> float | None:
    """CPUs allowed by cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: none)."""
    q, p = float(quota.strip()), float(period.strip())
    return q / p if q > 0 and p > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _ancestors(rel: str) -> list[str]:
    """``/a/b`` -> ``["a/b", "a", ""]``: limits nest, so every level up to the root counts."""
    parts = [p for p in rel.strip("/").split("/") if p]
    return ["/".join(parts[:i]) for i in range(len(parts), -1, -1)]


def _quota_at(directory: Path, version: int) -> float | None:
    if version == 2:
        text = _read(directory / "cpu.max")
        return parse_cpu_max(text) if text else None
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    return parse_cfs(quota, period) if quota and period else None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The tightest CPU quota over this process's cgroups (v2 and v1), or None when unlimited."""
    limits: list[float] = []
    for line in (_read(proc_cgroup) or "").splitlines():
        hier, _, rest = line.partition(":")
        controllers, _, rel = rest.partition(":")
        if hier == "0" and not controllers:
            bases, version = [root], 2
        elif "cpu" in controllers.split(","):
            bases, version = [root / controllers, root / "cpu", root / "cpu,cpuacct"], 1
        else:
            continue
        for base in dict.fromkeys(bases):  # rel may not exist inside a container's namespace: then the mount
            for sub in _ancestors(rel):
                lim = _quota_at(base / sub if sub else base, version)
                if lim is not None:
                    limits.append(lim)
    return min(limits) if limits else None


def available_cpus(affinity: int | None = None, quota: float | None = None) -> int:
    """Cores this process may use: its affinity set, capped by the cgroup quota (rounded up)."""
    if affinity is None:
        affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    n = affinity if quota is None else min(affinity, math.ceil(quota - 1e-9))
    return max(1, int(n))


def own_cpu_share() -> float:
    """CPUs this process used since the previous call (or since import); the load average counts it too."""
    now, cpu = time.monotonic(), sum(os.times()[:2])
    then, cpu0 = _OWN_SAMPLE[0]
    _OWN_SAMPLE[0] = (now, cpu)
    return max(0.0, (cpu - cpu0) / (now - then)) if now - then > 0.05 else 0.0


def choose_threads(available: int, load: float, own: float = 0.0, host_cpus: int | None = None) -> int:
    """Threads for the cores left free: ``available`` minus others' load on them, at least 1.

    ``load`` is host-wide (the load average), so others' share on our cores is scaled by
    ``available / host_cpus``; ``own`` (our own running threads) is not someone else's load.
    """
    host = max(host_cpus or available, available)
    others = max(0.0, load - own) * available / host
    return max(1, min(available, int(math.floor(available - others + 0.5))))


def parse_procs_running(text: str) -> int | None:
    """``procs_running`` of ``/proc/stat``: threads runnable right now, the reader included."""
    for line in text.splitlines():
        if line.startswith("procs_running"):
            return int(line.split()[1])
    return None


def running_now(samples: int = 5, interval: float = 0.02, stat: Path = PROC_STAT) -> float | None:
    """Others' runnable threads now (mean over a few samples, minus the sampling thread itself)."""
    counts = []
    for i in range(samples):
        n = parse_procs_running(_read(stat) or "")
        if n is None:
            return None
        counts.append(n - 1)
        if i + 1 < samples:
            time.sleep(interval)
    return max(0.0, sum(counts) / len(counts))


def policy_threads() -> int:
    """:func:`choose_threads` for this process and machine now.

    Others' load is the 1-minute load average minus our own share, or the runnable threads of
    this moment if fewer: the average lags by a minute after a competitor (or our previous run) stops.
    """
    avail = available_cpus(quota=cgroup_cpu_limit())
    recent = max(0.0, os.getloadavg()[0] - own_cpu_share()) if hasattr(os, "getloadavg") else 0.0
    now = running_now()
    return choose_threads(avail, recent if now is None else min(recent, now), 0.0, os.cpu_count())


def set_wait_policy(env: MutableMapping[str, str]) -> None:
    """Brief OpenMP spinning (:data:`SPIN_COUNT`) in ``env``, unless the user chose a wait policy."""
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env["GOMP_SPINCOUNT"] = str(SPIN_COUNT)


def configure_process(environ: MutableMapping[str, str] | None = None) -> None:
    """At a CLI entry point, before torch is imported: the wait policy (:func:`set_wait_policy`)
    and the thread policy switched on for :func:`apply_policy` (unless the user set
    ``OMP_NUM_THREADS``). Child processes inherit the wait policy, not a thread count: a Ray
    worker keeps the one thread per CPU that Ray gives it."""
    env = os.environ if environ is None else environ
    set_wait_policy(env)
    _POLICY["on"] = "OMP_NUM_THREADS" not in env


def apply_policy() -> int | None:
    """Set torch's intra-op threads to :func:`policy_threads` now, in a process that called
    :func:`configure_process` (elsewhere: no-op, None). Called as each model's units start, so a
    long run follows the load. Returns the thread count set."""
    if not _POLICY["on"]:
        return None
    import torch

    n = policy_threads()
    torch.set_num_threads(n)
    _POLICY["at"] = time.monotonic()
    return n


def refresh_policy(every_s: float = REFRESH_S) -> int | None:
    """:func:`apply_policy` again if the last choice is ``every_s`` old (between units: a competitor
    that starts mid-run gets its core back within a unit); else a no-op returning None."""
    if not _POLICY["on"] or time.monotonic() - _POLICY["at"] < every_s:
        return None
    return apply_policy()


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads (``None``: unchanged), then restore.

    Why: on a small shared CPU box, backward passes with 2 threads were measured 18x slower
    than with 1 (SmolLM2 FTGD step: 28 s vs 1.1 s, with one other busy process), while
    forward-only scoring barely cares. Wrap FTGD / gradient units in ``cpu_threads(1)`` there.
    The setting is process-wide: do not use it while other threads run torch work.
    """
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
