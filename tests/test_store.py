"""The results store: values without pickle, checksummed entries that heal, atomic writes."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import logging
import os
import pickle
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from diskcache.core import MODE_BINARY, MODE_PICKLE, MODE_RAW

from precompute.cli import main
from taskspace_core import codec
from taskspace_core import store as store_mod
from taskspace_core.ftgd import FTGDResult
from taskspace_core.results import ModelInfo, SpaceResult, TaskInfo, list_spaces, load_space
from taskspace_core.store import MissingEntry, Store, StoreError, make_key
from tests.tiny_runs import save_model, write_config, write_tasks

ROOT = Path(__file__).resolve().parents[1]


def assert_same(a: Any, b: Any, where: str = "value", rtol: float = 0.0) -> None:
    """Equal in type and value, recursively (arrays: dtype, shape and bits, or float arrays to ``rtol``;
    NaN equals NaN)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        if rtol and np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol, err_msg=where)
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}", rtol)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]", rtol)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]", rtol)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def db(store: Store) -> closing[sqlite3.Connection]:
    """A second connection to the store's diskcache database, as someone poking at the volume would open."""
    return closing(sqlite3.connect(store.root / "cache.db"))


def value_row(store: Store, key: str) -> tuple | None:
    """(mode, filename, value) of the entry's value row in diskcache's Cache table."""
    with db(store) as con:
        q = "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1"
        return con.execute(q, (store_mod._VALUE + key,)).fetchone()


def value_file(store: Store, key: str) -> Path | None:
    """The diskcache file holding the entry's value (None: the value is inline in cache.db)."""
    _, filename, _ = value_row(store, key)
    return store.root / filename if filename else None


def damage(store: Store, key: str, how: str) -> None:
    """Cut the value to half its bytes, or flip one byte near its end: in its file, or in its row."""
    f = value_file(store, key)
    data = bytearray(f.read_bytes() if f else value_row(store, key)[2])
    if how == "flip":
        data[-7] ^= 0x55
    data = bytes(data if how == "flip" else data[: len(data) // 2])
    if f:
        f.write_bytes(data)
    else:
        with db(store) as con, con:
            con.execute("UPDATE Cache SET value = ? WHERE key = ?", (data, store_mod._VALUE + key))


def gone(store: Store, key: str) -> bool:
    """Neither row of the entry is left."""
    with db(store) as con:
        q = "SELECT count(*) FROM Cache WHERE key IN (?, ?)"
        return con.execute(q, (store_mod._META + key, store_mod._VALUE + key)).fetchone() == (0,)


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def value_files(store: Store) -> list[Path]:
    """Files under the store other than diskcache's SQLite database."""
    return [p for p in all_files(store.root) if not p.name.startswith("cache.db")]


# ----------------------------------------------------------------------------- values


def hand_made_values() -> dict[str, Any]:
    """One of each value type the project stores, with the awkward corners filled in."""
    idx = np.array([1, 5, 9], dtype=np.int32)
    ftgd = FTGDResult(
        config={"method": "ftgd", "version": 1, "mask_fraction": 0.01},
        fingerprint="ab" * 8,
        names=("w1", "w2", "w3"),
        tensor_sizes={"w1": 12, "w2": 40, "w3": 7},
        delta={
            "w1": (idx, np.array([0.5, -1.0, 2.0], dtype=np.float16)),
            "w2": (idx[:0], np.zeros(0, np.float16)),
            "w3": (np.array([2], np.int32), np.array([1e-3], np.float16)),
        },
        masks={"w1": None, "w2": np.packbits(np.arange(40) % 3 == 0), "w3": np.array([2, 4], np.int32)},
        counts_per_tensor={"w1": 3, "w2": 14, "w3": 2},
        mask_distribution={"layers": ["0", "final"], "modules": ["mlp"], "counts": [[3], [16]]},
        curve={"step": [0.0, 1.0], "accuracy": [0.5, float("nan")], "mean_margin": [0.1, 0.2]},
        tune_before={"accuracy": 0.5, "mean_margin": -0.25, "n": 8, "ties": 0},
        sketch=np.linspace(-1, 1, 16).astype(np.float16),
        sketch_scale=3.5,
        grad_sq_norm=12.25,
        n_tune_pairs=8,
        seconds=0.01,
        extra={"note": "x"},
    )
    tasks = tuple(
        TaskInfo(f"t{i}", "agreement", "syntax", "d", {"tag": str(i)}, "good", "bad", 10 + i) for i in range(3)
    )
    T = np.arange(9, dtype=float).reshape(3, 3)
    T[0, 2] = np.nan
    space = SpaceResult(
        model=ModelInfo("tiny", "/m/tiny", None, False, "ff" * 8, "1M", 40, 1234),
        taskset="set",
        series="s",
        tasks=tasks,
        config={"methods": ["transfer"], "run": {"models": [{"name": "x", "step": 3}], 1: "int key"}},
        metric="mean_margin",
        eval1={"mean_margin": np.array([0.1, np.inf, -np.inf])},
        T=T,
        G=np.eye(3),
        curves={"t0": {"step": [0.0]}},
        n_eval_pairs=8,
        created=time.time(),
    )
    margins = np.array([0.5, -0.1, 0.0])
    return {
        "base": {"task": "t0", "margins": margins, "accuracy": 1 / 3, "mean_margin": 0.4 / 3, "n": 3, "ties": 1},
        "scores": {"task": "t0", "margins": margins.astype(np.float32), "metrics": {"accuracy": float("nan")}},
        "egrad": {"task": "t0", "dots": {"t0": 0.25, "t1": -1e-300}, "grad_sq_norm": 4.0, "n": 8},
        "ftgd": ftgd,
        "space": space,
        "corners": {
            "$": [1, (2, 3)],
            "tuple": (),
            "big": 2**70,
            "np": [np.float32(0.1), np.int64(-3), np.bool_(1)],
            "s": "ünï\u200bcode",
            "none": None,
            "nested": [[{"a": (None, True)}]],
        },
    }


@pytest.mark.parametrize("name", list(hand_made_values()))
def test_every_value_type_round_trips_through_the_store(tmp_path, name):
    value = hand_made_values()[name]
    store = Store(tmp_path)
    key = make_key(name, n=1)
    store.put(key, value, model="m")
    assert_same(Store(tmp_path).get(key), value)
    assert store.meta(key)["model"] == "m" and store.meta(key)["bytes"] > 0


@pytest.mark.parametrize(
    "value",
    [{1, 2}, np.array([object()]), {"a": len}, Path("x"), {frozenset({1}): 3}, dataclasses.make_dataclass("D", [])()],
    ids=["set", "object-array", "function", "path", "frozenset-key", "unregistered-dataclass"],
)
def test_values_outside_the_codec_are_refused_before_any_file_is_written(tmp_path, value):
    store = Store(tmp_path)
    with pytest.raises(codec.CodecError):
        store.put(make_key("x", v=1), value)
    assert value_files(store) == [] and len(store._cache) == 0


def test_decoding_names_only_allow_listed_types(tmp_path):
    for tree in ({"$": "c", "n": "Popen", "v": {}}, {"$": "c", "n": "SpaceResult", "v": {"bogus": 1}}, {"$": "zz"}):
        buf = io.BytesIO()
        np.savez(buf, __tree__=np.frombuffer(json.dumps(tree).encode(), np.uint8))
        with pytest.raises(codec.CodecError):
            codec.decode(buf.getvalue())


def test_keys_cannot_leave_the_store(tmp_path):
    store = Store(tmp_path)
    for key in ("../../etc/passwd", "space/../../x", "space/ABC", "/abs/0123456789"):
        with pytest.raises(ValueError, match="not a store key"):
            store.get(key)


# ----------------------------------------------------------------------------- damage and healing


@pytest.mark.parametrize("n", [20_000, 100], ids=["value-file", "inline-value"])
def test_truncated_or_flipped_entries_agree_between_has_and_get(tmp_path, caplog, n):
    store = Store(tmp_path)
    a, b = make_key("base", n=1), make_key("base", n=2)
    for k in (a, b):
        store.put(k, {"margins": np.arange(float(n))})
    fa, fb = value_file(store, a), value_file(store, b)
    assert (fa is not None) == (n == 20_000)  # diskcache keeps values under 32 KB inline in cache.db
    damage(store, a, "cut")  # truncated: has() sees the size at once
    damage(store, b, "flip")  # same size, one flipped byte: only the checksum sees it
    with caplog.at_level(logging.WARNING, logger="taskspace_core.store"):
        assert not store.has(a) and store.get(a) is None and gone(store, a)
        assert store.has(b)
        assert store.get(b) is None and not store.has(b) and gone(store, b)
        assert store.get(b, "default") == "default" and list(store.entries()) == []
        with pytest.raises(MissingEntry, match="run again"):
            store.require(b)
    assert value_files(store) == [] and not (fa and fa.exists()) and not (fb and fb.exists())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("damaged" in r.getMessage() for r in warnings)  # once each


def test_a_value_file_that_vanished_is_missing_for_has_and_get(tmp_path):
    store = Store(tmp_path)
    key = make_key("base", n=1)
    store.put(key, {"margins": np.arange(20_000.0)})
    value_file(store, key).unlink()
    assert not store.has(key) and store.get(key) is None and gone(store, key)


def test_an_entry_replaced_while_it_is_read_is_read_again_not_removed(tmp_path, caplog, monkeypatch):
    writer, reader = Store(tmp_path), Store(tmp_path)
    key = make_key("base", n=1)
    writer.put(key, {"v": np.arange(20_000.0)})
    real, raced = Store._record, []

    def racing(self, meta_row, value_row):
        if self is reader and not raced:  # between the reader's snapshot and its look at the value file
            raced.append(value_file(writer, key))
            writer.put(key, {"v": np.arange(20_000.0) + 1})  # diskcache removes the old file
        return real(self, meta_row, value_row)

    monkeypatch.setattr(Store, "_record", racing)
    with caplog.at_level(logging.WARNING, logger="taskspace_core.store"):
        assert_same(reader.get(key), {"v": np.arange(20_000.0) + 1})
    assert raced and not raced[0].exists() and not caplog.records


def test_a_damaged_cache_is_healed_by_the_next_run(tmp_path, monkeypatch, caplog, one_torch_thread):
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    model = save_model(tmp_path / "model")
    cfg = write_config(tmp_path, [{"name": str(model), "size": "tiny", "step": 1}], write_tasks(tmp_path / "t.csv"))
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    store = Store(tmp_path / "cache")
    (rec,) = list_spaces(store)
    before = load_space(store, rec["key"])
    ftgd = sorted(r["key"] for r in store.entries("ftgd"))
    transfer = sorted(r["key"] for r in store.entries("transfer"))
    original = {k: store.get(k) for k in (ftgd[0], ftgd[1], transfer[0])}
    # round 1: units damaged (found by has() at planning, or by the checksum when a transfer reads its FTGD);
    # round 2: the assembled space damaged (found by the checksum when the run looks for it)
    for damages in ([(ftgd[0], "flip"), (ftgd[1], "cut"), (transfer[0], "cut")], [(rec["key"], "flip")]):
        for key, how in damages:
            damage(store, key, how)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="taskspace_core.store"):
            assert main(["run", "--config", str(cfg), "--quiet"]) == 0
        damaged = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
        assert len(damaged) == len(damages), damaged  # each reported once
        store = Store(tmp_path / "cache")
        # recomputed to the same numbers: only the timing differs, and float sums in the last bits
        # (a healed transfer unit is scored in a smaller stream, so its batches are summed in another order)
        for key, value in original.items():
            got = store.get(key)
            if isinstance(value, FTGDResult):
                got, value = dataclasses.replace(got, seconds=0.0), dataclasses.replace(value, seconds=0.0)
            assert_same(got, value, key, rtol=1e-5)
        after = load_space(store, rec["key"])
        for m in ("T", "G", "J", "lift_per_tensor", "lift_uniform"):
            np.testing.assert_allclose(getattr(after, m), getattr(before, m), rtol=1e-5, atol=1e-5, err_msg=m)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="taskspace_core.store"):
        assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    assert not [r for r in caplog.records if "damaged" in r.getMessage()]
    for r in store.entries():  # everything the runner stored decodes and round-trips
        value = store.get(r["key"])
        assert_same(codec.decode(codec.encode(value)), value, r["key"])


_SLOW_WRITER = """
import sys, time, numpy as np
from taskspace_core import store as s
def slow(f, data):
    f.write(data[: len(data) // 2]); f.flush()
    print("half", flush=True); time.sleep(60)
st = s.Store(sys.argv[1])
st.put(s.make_key("ftgd", n=1), {"big": np.arange(200_000.0)})  # the first entry writes in full
s._write = slow
st.put(s.make_key("ftgd", n=2), {"big": np.arange(200_000.0)})
"""


def test_a_write_killed_midway_leaves_no_valid_looking_entry(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "half"
    finally:
        proc.kill()
        proc.wait()
    store = Store(tmp_path)
    done, killed = make_key("ftgd", n=1), make_key("ftgd", n=2)
    assert store.has(done) and store.get(done)["big"].shape == (200_000,)
    assert not store.has(killed) and store.get(killed) is None and store.meta(killed) is None
    assert [r["key"] for r in store.entries()] == [done]
    (part,) = set(value_files(store)) - {value_file(store, done)}  # the half file is in no committed row
    os.utime(part, (time.time() - 2 * 3600,) * 2)
    Store(tmp_path)  # opening the store sweeps value files of dead writers
    assert not part.exists() and store.get(done)["big"].shape == (200_000,)


def test_disk_full_is_a_clear_error_and_leaves_no_file(tmp_path, monkeypatch):
    store = Store(tmp_path)
    kept = make_key("base", n=0)
    store.put(kept, {"x": 1})
    before = all_files(store.root)
    calls = []

    def full(f, data):
        calls.append(len(data))
        f.write(data[:10])  # the first bytes fit, the rest does not
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store_mod, "_write", full)
    key = make_key("base", n=1)
    with pytest.raises(StoreError, match="disk is full") as exc:
        store.put(key, {"margins": np.arange(20_000.0)})  # big enough for a value file
    assert exc.value.errno == errno.ENOSPC and key in str(exc.value) and calls
    assert all_files(store.root) == before
    assert not store.has(key) and store.get(kept) == {"x": 1} and gone(store, key)


def test_a_full_database_is_a_clear_error_and_leaves_no_file(tmp_path, monkeypatch):
    store = Store(tmp_path)
    written = []
    monkeypatch.setattr(store_mod, "_write", lambda f, data: (written.append(len(data)), f.write(data)))
    kept, small, big = (make_key("base", n=i) for i in range(3))
    store.put(kept, {"x": np.arange(100.0)})
    before = all_files(store.root)
    (pages,) = store._query("PRAGMA page_count")[0]
    store._query(f"PRAGMA max_page_count = {pages + 1}")  # SQLite answers SQLITE_FULL past this
    # an inline value that does not fit; a value file written, then a metadata row that does not fit
    for key, n, note in ((small, 3000, ""), (big, 20_000, "n" * 20_000)):
        with pytest.raises(StoreError, match="disk is full") as exc:
            store.put(key, {"x": np.arange(float(n))}, note=note)
        assert exc.value.errno == errno.ENOSPC and key in str(exc.value)
        assert all_files(store.root) == before and gone(store, key) and not store.has(key)
    assert written == [len(codec.encode({"x": np.arange(20_000.0)}))]  # only the second wrote a file
    assert_same(store.get(kept), {"x": np.arange(100.0)})


# ----------------------------------------------------------------------------- no code execution


class _Evil:
    """Unpickling this creates the marker file: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant(store: Store, name: Any, value: Any, mode: int = MODE_RAW, filename: str | None = None, raw: int = 1) -> None:
    """A row written into diskcache's table by hand, as whoever can write the volume could."""
    with db(store) as con, con:
        con.execute(
            "INSERT INTO Cache(key, raw, store_time, access_time, size, mode, filename, value)"
            " VALUES (?, ?, 0, 0, ?, ?, ?, ?)",
            (name, raw, len(value or b""), mode, filename, value),
        )


def plant_meta(store: Store, key: str, payload: bytes, mode: int = MODE_RAW) -> None:
    rec = {"key": key, "kind": key.split("/")[0], "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    text = json.dumps(rec)
    plant(store, store_mod._META + key, pickle.dumps(rec) if mode == MODE_PICKLE else text, mode)


def test_a_planted_pickle_never_runs(tmp_path, monkeypatch):
    marker, outside = tmp_path / "pwned", tmp_path / "outside.txt"
    outside.write_text("not the cache's")
    evil = pickle.dumps(_Evil(marker))
    obj = np.empty(1, dtype=object)
    obj[0] = _Evil(marker)
    npz = io.BytesIO()
    np.savez(npz, __tree__=np.frombuffer(b'{"$":"a","v":0}', np.uint8), a0=obj)  # savez pickles object arrays
    store = Store(tmp_path / "cache")
    keys = [make_key("space", n=i) for i in range(6)]
    pickle_file = "ab/cd/" + "e" * 28 + ".val"
    (store.root / "ab" / "cd").mkdir(parents=True)
    (store.root / pickle_file).write_bytes(evil)
    v = store_mod._VALUE
    plant(store, v + keys[0], evil, MODE_PICKLE)  # diskcache's inline pickle row
    plant(store, v + keys[1], None, MODE_PICKLE, pickle_file)  # diskcache's pickle file row
    plant(store, v + keys[2], evil)  # a pickle as the value's bytes
    plant(store, v + keys[3], npz.getvalue())  # an npz whose array is a pickle
    plant(store, v + keys[4], None, MODE_BINARY, "../../outside.txt")  # a file outside the store
    good = codec.encode({"x": 1})
    plant(store, v + keys[5], good)  # a good value, but its metadata is a pickle
    for key, payload in zip(keys[:5], [evil, evil, evil, npz.getvalue(), b"not the cache's"], strict=True):
        plant_meta(store, key, payload)
    plant_meta(store, keys[5], good, MODE_PICKLE)
    plant(store, evil, b"x", raw=0)  # a key that only pickle could read
    old = tmp_path / "cache" / "results"  # where schema-1 pickles lived
    old.mkdir()
    (old / "value.pkl").write_bytes(evil)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("pickle.loads called"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("pickle.load called"))
    with pytest.raises(store_mod.PickleRefused):  # diskcache's own read path refuses as well
        store._cache.get(v + keys[0])
    with pytest.raises(store_mod.PickleRefused):  # ... and its key listing
        list(store._cache)
    with pytest.raises(store_mod.PickleRefused):  # ... and never pickles on the way in
        store._cache.set(v + keys[0], {"a": 1})
    for key in keys:
        assert store.get(key) is None and not store.has(key) and gone(store, key)
    assert list_spaces(store) == [] and list(store.entries()) == [] and not marker.exists()
    assert outside.read_text() == "not the cache's" and not (store.root / pickle_file).exists()


def test_resume_state_loads_with_weights_only(tmp_path):
    import random

    import torch

    from taskspace_core.pretrain.checkpoints import _atomic_torch_save, _rng_state, _set_rng_state

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    path = tmp_path / "resume.pt"
    _atomic_torch_save({"step": 3, "optimizer": opt.state_dict(), "rng": _rng_state(), "curve": [{"s": 1.5}]}, path)
    expected = (torch.rand(3), random.random(), np.random.rand(3))
    state = torch.load(path, weights_only=True)
    _set_rng_state(state["rng"])
    got = (torch.rand(3), random.random(), np.random.rand(3))
    assert torch.equal(got[0], expected[0]) and got[1] == expected[1]
    np.testing.assert_array_equal(got[2], expected[2])
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-3)
    fresh.load_state_dict(state["optimizer"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


@dataclasses.dataclass(frozen=True)
class _Unit:
    name: str
    values: np.ndarray


def test_a_registered_dataclass_round_trips_and_an_unfrozen_one_is_refused():
    codec.register(_Unit)
    value = _Unit("u", np.arange(4, dtype=np.int16))
    assert_same(codec.decode(codec.encode(value)), value)
    with pytest.raises(codec.CodecError, match="frozen"):
        codec.register(dataclasses.make_dataclass("Loose", [("x", int)]))
