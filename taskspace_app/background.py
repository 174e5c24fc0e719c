"""Heavy statistics off the request path: one worker thread, results kept in the store.

A statistic (a Mantel test, a layout) is named by a store key made of what determines it:
the space's key and creation time, the statistic, its settings and :data:`STATS_VERSION`.
:meth:`Background.submit` answers from memory or from the store when it can, so a second
user or server process gets a statistic another one computed; otherwise it queues the work
on the app's one worker thread (lowered priority, so page scripts stay responsive on a
small machine) and stores the result when done. The page waits on the returned future
under a spinner that names the work (see ``taskspace_app.reading``).

UMAP's first call in a process compiles numba code for tens of seconds, holding the GIL
for long stretches; so UMAP runs in a process of its own (``taskspace_app.umap_worker``)
at the lowest priority, which :meth:`Background.warm_umap` starts at app start, and the
Map view shows MDS until it is warm. No Streamlit here: the worker threads have no script context.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from taskspace_core.codec import CodecError
from taskspace_core.spaces import SpaceError
from taskspace_core.store import Store, StoreError, make_key

log = logging.getLogger(__name__)

STATS_VERSION = 2  # bump when a statistic's numbers change, so stored ones are not served (2: profile default)
KIND = "stat"
_MEMORY = 4096  # finished statistics kept in memory (each is a few numbers or a small array)
_MISSING = object()
_NICE = 10
_ROOT = Path(__file__).resolve().parents[1]
UMAP_WORKER = [sys.executable, "-m", "taskspace_app.umap_worker"]  # see taskspace_app/umap_worker.py


def stat_key(space_key: str, created: float, stat: str, **settings: Any) -> str:
    """Store key of statistic ``stat`` of one space under ``settings``."""
    return make_key(KIND, space=space_key, created=created, stat=stat, version=STATS_VERSION, **settings)


def _lower_priority() -> None:
    # Linux niceness is per thread: a statistic never outbids the page scripts for a core
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _NICE)


class Background:
    """The app's worker thread for statistics, its finished results, and the process that runs UMAP."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="taskspace-stats", initializer=_lower_priority)
        self._jobs: OrderedDict[str, Future] = OrderedDict()
        self._lock = threading.Lock()
        self._umap_proc: subprocess.Popen | None = None
        self._umap_ready = threading.Event()
        self._umap_io = threading.Lock()  # one request and its reply at a time

    def submit(self, key: str, compute: Callable[[], Any], **meta: Any) -> Future:
        """A future of the statistic ``key``: done at once if known, else ``compute`` runs on the worker.

        A computation that raised is tried again on the next call (its error is not stored)."""
        with self._lock:
            fut = self._known(key)
        if fut is not None:
            return fut
        stored = self.store.get(key, _MISSING)
        with self._lock:
            fut = self._known(key)  # another session may have asked meanwhile
            if fut is None:
                if stored is _MISSING:
                    fut = self._pool.submit(self._run, key, compute, meta)
                else:
                    fut = Future()
                    fut.set_result(stored)
                self._jobs[key] = fut
                while len(self._jobs) > _MEMORY:
                    oldest = next(iter(self._jobs))
                    if not self._jobs[oldest].done():
                        break
                    self._jobs.pop(oldest)
            return fut

    def peek(self, key: str) -> Any:
        """The statistic ``key`` if it is finished in memory or stored, else None (nothing is computed)."""
        with self._lock:
            fut = self._known(key)
        if fut is not None:
            return fut.result() if fut.done() else None
        got = self.store.get(key, _MISSING)
        return None if got is _MISSING else got

    def _known(self, key: str) -> Future | None:
        fut = self._jobs.get(key)
        if fut is None or (fut.done() and fut.exception() is not None):
            return None
        self._jobs.move_to_end(key)
        return fut

    def _run(self, key: str, compute: Callable[[], Any], meta: dict[str, Any]) -> Any:
        value = compute()
        try:
            self.store.put(key, value, **meta)
        except (StoreError, CodecError) as exc:  # a read-only cache still shows the statistic
            log.warning("statistic %s not stored: %s", key, exc)
        return value

    def warm_umap(self) -> None:
        """Start UMAP's process, which compiles its numba code (once); the server's threads go on."""
        with self._lock:
            self._umap_process()

    def umap_warming(self) -> bool:
        """True while UMAP's process warms up (False before it is started and once it is ready)."""
        return self._umap_proc is not None and not self._umap_ready.is_set()

    def umap(self, S: np.ndarray) -> dict[str, Any]:
        """UMAP layout of ``S`` as {"coords", "note"}, computed in UMAP's process."""
        with self._lock:
            proc, ready = self._umap_process(), self._umap_ready
        ready.wait()
        with self._umap_io:
            try:
                proc.stdin.write(json.dumps({"S": np.asarray(S, dtype=float).tolist()}) + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
            except OSError:
                line = ""
        if not line:  # the process died (killed, out of memory): the next layout starts a new one
            with self._lock:
                if self._umap_proc is proc:
                    self._umap_proc = None
            raise SpaceError("UMAP's worker process stopped; try again, or choose MDS")
        reply = json.loads(line)
        if "error" in reply:
            raise SpaceError(f"UMAP failed: {reply['error']}")
        return {"coords": np.asarray(reply["coords"], dtype=float), "note": str(reply.get("note") or "")}

    def _umap_process(self) -> subprocess.Popen:
        # under self._lock; a process of its own, not multiprocessing: Streamlit runs page
        # scripts as __main__, which a spawned multiprocessing child would run again
        if self._umap_proc is None or self._umap_proc.poll() is not None:
            self._umap_ready = threading.Event()
            self._umap_proc = subprocess.Popen(
                UMAP_WORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=_ROOT
            )
            threading.Thread(target=self._await_ready, args=(self._umap_proc, self._umap_ready), daemon=True).start()
        return self._umap_proc

    @staticmethod
    def _await_ready(proc: subprocess.Popen, ready: threading.Event) -> None:
        line = proc.stdout.readline()
        if not line:
            log.warning("UMAP's worker process ended while warming up (exit code %s)", proc.wait())
        ready.set()  # a dead worker reads as ready: the next layout then reports it
