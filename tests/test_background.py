"""The statistics worker: one computation per (space, settings), kept in the store for other processes."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from taskspace_app.background import Background, stat_key
from taskspace_core.store import Store


def _never() -> dict:
    raise AssertionError("computed again although the statistic was known")


def test_computed_once_then_served_from_the_store_to_a_new_process(tmp_path: Path) -> None:
    key = stat_key("space/" + "ab" * 16, 1.5, "fit", level="category", n_perm=9999)
    calls = []
    first = Background(Store(tmp_path))

    def compute() -> dict:
        calls.append(1)
        return {"spearman": 0.25, "p": np.float64(0.01), "coords": np.arange(6.0).reshape(3, 2), "note": ""}

    got = first.submit(key, compute, model="m").result(timeout=30)
    assert first.submit(key, _never).result() is got and calls == [1]  # memory
    again = Background(Store(tmp_path)).submit(key, _never).result(timeout=30)  # a second server process
    assert again["spearman"] == 0.25 and again["p"] == 0.01
    np.testing.assert_array_equal(again["coords"], np.arange(6.0).reshape(3, 2))
    rec = Store(tmp_path).meta(key)
    assert rec is not None and rec["kind"] == "stat" and rec["model"] == "m"


def test_settings_and_recomputed_spaces_get_their_own_key() -> None:
    base = stat_key("space/" + "ab" * 16, 1.5, "fit", n_perm=999)
    assert base != stat_key("space/" + "ab" * 16, 1.5, "fit", n_perm=9999)
    assert base != stat_key("space/" + "ab" * 16, 2.5, "fit", n_perm=999)  # the space was recomputed
    assert base != stat_key("space/" + "cd" * 16, 1.5, "fit", n_perm=999)
    assert base != stat_key("space/" + "ab" * 16, 1.5, "layout", n_perm=999)


def test_a_failed_statistic_is_not_stored_and_is_tried_again(tmp_path: Path) -> None:
    bg = Background(Store(tmp_path))
    key = stat_key("space/" + "ab" * 16, 0.0, "fit")

    def boom() -> dict:
        raise ValueError("bad level")

    with pytest.raises(ValueError, match="bad level"):
        bg.submit(key, boom).result(timeout=30)
    assert bg.peek(key) is None and not Store(tmp_path).has(key)
    assert bg.submit(key, lambda: {"ok": 1}).result(timeout=30) == {"ok": 1}
    assert bg.peek(key) == {"ok": 1}


def test_the_work_runs_on_the_worker_not_the_caller(tmp_path: Path) -> None:
    bg = Background(Store(tmp_path))
    release, where = threading.Event(), []

    def slow() -> dict:
        where.append(threading.current_thread().name)
        release.wait(30)
        return {"v": 1.0}

    key = stat_key("space/" + "ab" * 16, 0.0, "slow")
    fut = bg.submit(key, slow)
    assert not fut.done() and bg.peek(key) is None  # submit returned at once
    assert bg.submit(key, _never) is fut  # a second session waits on the same computation
    release.set()
    assert fut.result(timeout=30) == {"v": 1.0} and where[0].startswith("taskspace-stats")


# stands in for taskspace_app.umap_worker: its warm-up (numba's compile) lasts until the release file
# appears; its "layout" is all zeros, and its note names its process id
FAKE_WORKER = """
import json, os, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    n = len(json.loads(line)["S"])
    print(json.dumps({"coords": [[0.0, 0.0]] * n, "note": str(os.getpid())}), flush=True)
"""


def fake_worker(monkeypatch: pytest.MonkeyPatch, release: Path) -> None:
    from taskspace_app import background

    monkeypatch.setattr(background, "UMAP_WORKER", [sys.executable, "-c", FAKE_WORKER, str(release)])


def test_umap_warms_and_runs_in_its_own_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_worker(monkeypatch, tmp_path / "release")
    bg = Background(Store(tmp_path))
    assert not bg.umap_warming()  # not started
    bg.warm_umap()
    bg.warm_umap()  # once only
    assert bg.umap_warming()
    (tmp_path / "release").touch()
    got = bg.umap(np.eye(4))  # waits for the warm-up, then asks the process
    assert not bg.umap_warming() and int(got["note"]) != os.getpid() and got["coords"].shape == (4, 2)
    assert bg.umap(np.eye(3))["note"] == got["note"]  # the same process, warm


def test_a_real_umap_worker_gives_a_layout(tmp_path: Path) -> None:
    from taskspace_app.umap_worker import umap_layout

    got = umap_layout(np.eye(2))  # two tasks: no numba compile, MDS with a note
    assert np.asarray(got["coords"]).shape == (2, 2) and "MDS" in got["note"]
