"""Thread policy on fake affinity, cgroup and load inputs; the wait policy reaches torch."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from precompute.job_process import runner_env as _env
from taskspace_core import threads

ROOT = Path(__file__).resolve().parents[1]


def fake_cgroup(tmp_path: Path, proc_lines: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(proc_lines)
    return root, proc


def test_parsers():
    assert threads.parse_cpu_max("150000 100000\n") == 1.5
    assert threads.parse_cpu_max("max 100000") is None
    assert threads.parse_cfs("-1", "100000") is None
    assert threads.parse_cfs("250000\n", "100000\n") == 2.5


def test_cgroup_v2_takes_the_tightest_limit_up_the_tree(tmp_path):
    files = {"user.slice/job/cpu.max": "150000 100000", "user.slice/cpu.max": "max 100000"}
    root, proc = fake_cgroup(tmp_path, "0::/user.slice/job\n", files)
    assert threads.cgroup_cpu_limit(root, proc) == 1.5
    (root / "user.slice/cpu.max").write_text("50000 100000")  # a parent's quota binds its children
    assert threads.cgroup_cpu_limit(root, proc) == 0.5


def test_cgroup_v1_quota_and_container_namespace(tmp_path):
    lines = "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n0::/\n"
    files = {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"}
    root, proc = fake_cgroup(tmp_path, lines, files)
    assert threads.cgroup_cpu_limit(root, proc) == 2.0
    # inside a container the /proc path is not under the mount: the mount's own quota counts
    files = {"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"}
    root, proc = fake_cgroup(tmp_path / "ns", "1:cpu:/docker/abc\n", files)
    assert threads.cgroup_cpu_limit(root, proc) == 3.0
    files = {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}
    root, proc = fake_cgroup(tmp_path / "free", "1:cpu:/\n", files)
    assert threads.cgroup_cpu_limit(root, proc) is None
    assert threads.cgroup_cpu_limit(tmp_path / "none", tmp_path / "missing") is None


def test_available_cpus_is_affinity_capped_by_the_quota():
    assert threads.available_cpus(affinity=8, quota=1.5) == 2
    assert threads.available_cpus(affinity=2, quota=None) == 2
    assert threads.available_cpus(affinity=2, quota=6.0) == 2
    assert threads.available_cpus(affinity=4, quota=0.3) == 1
    assert threads.available_cpus(affinity=4, quota=2.0) == 2


@pytest.mark.parametrize(
    ("available", "load", "own", "host", "expect"),
    [
        (2, 0.05, 0.0, 2, 2),  # quiet: every core
        (2, 1.0, 0.0, 2, 1),  # one competitor on a 2-core box: leave it its core
        (2, 2.0, 2.0, 2, 2),  # the load is our own two threads: not a competitor
        (2, 3.0, 2.0, 2, 1),
        (2, 12.0, 0.0, 2, 1),  # never fewer than one
        (4, 16.0, 0.0, 64, 3),  # host-wide load spread over 64 cores: about 1 on our 4
        (8, 0.4, 0.0, 8, 8),
    ],
)
def test_choose_threads(available, load, own, host, expect):
    assert threads.choose_threads(available, load, own, host) == expect


def test_running_now_reads_proc_stat(tmp_path):
    assert threads.parse_procs_running("cpu 1 2 3\nprocs_running 3\nprocs_blocked 0\n") == 3
    assert threads.parse_procs_running("cpu 1 2 3\n") is None
    stat = tmp_path / "stat"
    stat.write_text("intr 5\nprocs_running 4\n")
    assert threads.running_now(samples=3, interval=0.0, stat=stat) == 3.0  # the reader is not a competitor
    assert threads.running_now(stat=tmp_path / "missing") is None


def test_policy_uses_the_smaller_of_recent_and_current_load(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda affinity=None, quota=None: 2)
    monkeypatch.setattr(threads, "own_cpu_share", lambda: 0.0)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.2, 1.0, 1.0))
    monkeypatch.setattr(threads, "running_now", lambda: 0.0)  # the competitor just left: the average lags
    assert threads.policy_threads() == 2
    monkeypatch.setattr(threads, "running_now", lambda: 1.0)
    assert threads.policy_threads() == 1
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.1, 1.0, 1.0))  # a momentary spike alone
    assert threads.policy_threads() == 2


def test_own_share_is_small_while_idle():
    threads.own_cpu_share()
    time.sleep(0.3)
    assert threads.own_cpu_share() < 0.3


def test_configure_process_never_overrides_the_user(monkeypatch):
    monkeypatch.setitem(threads._POLICY, "on", False)
    env: dict[str, str] = {}
    threads.configure_process(env)
    assert env == {"GOMP_SPINCOUNT": str(threads.SPIN_COUNT)} and threads._POLICY["on"]
    env = {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3"}
    threads.configure_process(env)
    assert env == {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3"} and not threads._POLICY["on"]
    env = {"GOMP_SPINCOUNT": "0"}
    threads.configure_process(env)
    assert env == {"GOMP_SPINCOUNT": "0"}


def test_refresh_policy_rechooses_threads_only_when_due(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setitem(threads._POLICY, "on", True)
    chosen = iter([1, 2])
    monkeypatch.setattr(threads, "policy_threads", lambda: next(chosen))
    try:
        assert threads.apply_policy() == 1
        assert threads.refresh_policy(every_s=60.0) is None and torch.get_num_threads() == 1  # not due
        assert threads.refresh_policy(every_s=0.0) == 2 and torch.get_num_threads() == 2
        monkeypatch.setitem(threads._POLICY, "on", False)
        assert threads.refresh_policy(every_s=0.0) is None
    finally:
        torch.set_num_threads(before)


def test_apply_policy_only_in_configured_processes(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setitem(threads._POLICY, "on", False)
    assert threads.apply_policy() is None and torch.get_num_threads() == before
    monkeypatch.setitem(threads._POLICY, "on", True)
    monkeypatch.setattr(threads, "policy_threads", lambda: 1)
    try:
        assert threads.apply_policy() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_job_children_get_the_wait_policy_unless_the_user_chose(monkeypatch, tmp_path):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    assert _env(tmp_path)["GOMP_SPINCOUNT"] == str(threads.SPIN_COUNT)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    env = _env(tmp_path)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and "GOMP_SPINCOUNT" not in env


def test_cli_entry_sets_the_wait_policy_before_torch_loads():
    # record GOMP_SPINCOUNT at the moment torch is first imported by `python -m precompute --help`
    probe = (
        "import os, runpy, sys\n"
        "seen = {}\n"
        "class Spy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' and 'torch' not in seen: seen['torch'] = os.environ.get('GOMP_SPINCOUNT')\n"
        "sys.meta_path.insert(0, Spy())\n"
        "sys.argv = ['precompute', '--help']\n"
        "try: runpy.run_module('precompute', run_name='__main__')\n"
        "except SystemExit: pass\n"
        "print('RESULT', seen.get('torch', 'not imported'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    result = [line for line in out.stdout.splitlines() if line.startswith("RESULT")]
    assert result, out.stderr[-2000:]
    assert result[0].split(" ", 1)[1] in (str(threads.SPIN_COUNT), "not imported")
