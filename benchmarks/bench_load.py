"""Load: 10 simulated users browse every view of a cached analysis while one job runs.

Builds a real analysis in a temporary cache (``tests/tiny_runs.run_series``: the runner on
two checkpoints of a tiny model), starts one real background job (the same models with
more FTGD steps, so new units), then starts ``--users`` processes. Each is one user: an
AppTest session of ``app.py`` that visits every view ``--rounds`` times, starting at a
different view than its neighbours, all released at once. Reports page times (median, p95,
max) per view and overall, first visits (the user's own caches are cold: AppTest sessions
in separate processes share no ``st.cache_data``, unlike one server) apart from later ones,
and every failure: an exception on the page, a run that raised, or a chart view without
its chart.

    nice .venv/bin/python benchmarks/bench_load.py [--users 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import yaml
from _common import ROOT

VIEWS = ("home", "run", "space", "map", "tree", "overlap", "hypotheses", "pairs")
CHART_VIEWS = ("space", "map", "tree", "overlap", "hypotheses")  # must show at least one chart
Sample = tuple[str, float, bool, str]  # view, seconds, first visit, failure ("" if none)


def visit(at: object, view: str) -> str:
    """Show ``view`` in the user's session; returns a failure description or ""."""
    at.switch_page(f"taskspace_app/views/{view}.py").run()
    if at.exception:
        return f"{view}: exception on the page: {at.exception[0].value}"[:300]
    if view in CHART_VIEWS and not at.get("plotly_chart"):
        infos = " | ".join(str(i.value) for i in at.info)[:200]
        return f"{view}: no chart ({infos or 'no message'})"
    return ""


def user(index: int, rounds: int, ready: object, go: object, results: object) -> None:
    """One simulated user (its own process and AppTest session)."""
    from streamlit.testing.v1 import AppTest

    samples: list[Sample] = []
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    try:
        at.run()  # the first page load (imports, session), before everyone is released
    except Exception as exc:  # noqa: BLE001 - reported with the samples
        samples.append(("home", 0.0, True, f"the first load raised {type(exc).__name__}: {exc}"[:300]))
    order = VIEWS[index % len(VIEWS) :] + VIEWS[: index % len(VIEWS)]
    ready.wait(timeout=900)
    go.wait(timeout=900)
    for r in range(rounds):
        for view in order:
            t0 = time.perf_counter()
            try:
                failure = visit(at, view)
            except Exception as exc:  # noqa: BLE001 - a timeout or a crash is a failure to report, not to stop on
                failure = f"{view}: the run raised {type(exc).__name__}: {exc}"[:300]
            samples.append((view, time.perf_counter() - t0, r == 0, failure))
    results.put(samples)


def build(tmp: Path) -> dict:
    """A cached analysis (real tiny run) and the config of the job that runs during the load."""
    from tests.tiny_runs import run_series

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        cfg_path = run_series(tmp)  # its plan and progress bars are not what this script reports
    job = yaml.safe_load(cfg_path.read_text())
    job.update(name="load-job", series="load-series")
    job["ftgd"] = {**job["ftgd"], "steps": 1500}  # new units, minutes of work: outlasts the load
    return job


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def line(name: str, times: list[float]) -> str:
    if not times:
        return f"{name:<12} (none)"
    return (
        f"{name:<12} n={len(times):>4}  median {statistics.median(times):6.2f} s  "
        f"p95 {pct(times, 0.95):6.2f} s  max {max(times):6.2f} s"
    )


def report(samples: list[Sample], wall: float, job_before: str, job_after: str) -> None:
    failures = [f for *_, f in samples if f]
    print(f"\n{len(samples)} page views in {wall:.1f} s wall; job during the load: {job_before} -> {job_after}")
    print("per view (all visits):")
    for view in VIEWS:
        print("  " + line(view, [t for v, t, _, _ in samples if v == view]))
    print("overall:")
    print("  " + line("all", [t for _, t, _, _ in samples]))
    print("  " + line("first visit", [t for _, t, first, _ in samples if first]))
    print("  " + line("later", [t for _, t, first, _ in samples if not first]))
    print(f"failures: {len(failures)}" + "".join(f"\n  {f}" for f in failures[:5]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    os.environ["TASKSPACE_CACHE"] = str(tmp / "cache")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the job's runner: one thread, as on a shared CPU box
    from precompute import jobs

    t0 = time.perf_counter()
    job_cfg = build(tmp)
    print(f"cached analysis built in {time.perf_counter() - t0:.1f} s (tiny run, 2 checkpoints x 4 tasks)")
    ctx = mp.get_context("spawn")
    ready, go, results = ctx.Barrier(args.users + 1), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=user, args=(i, args.rounds, ready, go, results)) for i in range(args.users)]
    for p in procs:
        p.start()
    ready.wait(timeout=900)  # every user has loaded the app once
    owner = SimpleNamespace(name="bench", is_admin=True)
    status, _ = jobs.start_job(job_cfg, user=owner)

    def job_text() -> str:
        s = jobs.job_status(status.id)
        return f"{s.state} {s.done}/{s.total} units" if s else "gone"

    for _ in range(600):  # until the runner has planned and works on units
        if jobs.job_status(status.id).state != "starting":
            break
        time.sleep(0.5)
    job_before, start = job_text(), time.perf_counter()
    go.set()  # release every user at once
    samples = [s for _ in procs for s in results.get(timeout=3600)]
    wall = time.perf_counter() - start
    job_after = job_text()
    for p in procs:
        p.join()
    jobs.cancel_job(status.id, user=owner)
    for _ in range(50):  # let the runner stop before its cache goes
        if not jobs.job_status(status.id).alive:
            break
        time.sleep(0.2)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    report(samples, wall, job_before, job_after)


if __name__ == "__main__":
    main()
