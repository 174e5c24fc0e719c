"""Saved task sets: atomic, never silently overwritten, versioned; jobs pin the version they start with."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from precompute import jobs
from taskspace_core import tasksets
from taskspace_core.sources import load_tasks
from taskspace_core.tasks import MinimalPair, Task, TaskError, TaskSet


def taskset(*goods: str, tag: str = "") -> TaskSet:
    pairs = tuple(MinimalPair(g, g + " not") for g in goods)
    return TaskSet("x", (Task("t", pairs, category="c", tags=(("kind", tag),) if tag else ()),))


def test_conflict_replace_and_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path))
    first = tasksets.save(taskset("a b", "c d"), "mine")
    assert first.created and first.name == "mine" and first.path == tmp_path / "tasksets" / "mine.csv"
    v1_bytes = first.path.read_bytes()
    same = tasksets.save(taskset("a b", "c d"), "mine")  # the same content again: no new version
    assert not same.created and same.version == 1
    with pytest.raises(tasksets.TaskSetConflict, match="choose a new name or replace"):
        tasksets.save(taskset("a b", "c d", tag="other"), "mine")  # other tags are other content
    assert first.path.read_bytes() == v1_bytes
    second = tasksets.save(taskset("e f"), "mine", replace=True)
    assert second.created and second.name == "mine@v2"
    assert first.path.read_bytes() == v1_bytes  # the old version is kept
    assert tasksets.list_sets() == ["mine"]
    assert [p.pairs[0].good for p in load_tasks("set:mine")] == ["e f"]  # the latest version
    assert load_tasks("set:mine").name == "mine@v2"  # results show which version they were computed on
    old = load_tasks("set:mine@v1")
    assert old.name == "mine" and sorted(p.good for p in old["t"].pairs) == ["a b", "c d"]
    assert not list((tmp_path / "tasksets").glob(".saving-*"))  # no temporary file left behind


def test_concurrent_saves_never_overwrite(tmp_path: Path) -> None:
    barrier = threading.Barrier(4)
    outcome: dict[int, str] = {}

    def save(i: int) -> None:
        barrier.wait()
        try:
            tasksets.save(taskset(f"s{i} a"), "race", tmp_path)
            outcome[i] = "saved"
        except tasksets.TaskSetConflict:
            outcome[i] = "conflict"

    threads = [threading.Thread(target=save, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, o in outcome.items() if o == "saved"]
    assert len(winners) == 1 and len(outcome) == 4
    assert load_tasks(f"file:{tmp_path / 'tasksets' / 'race.csv'}")["t"].pairs[0].good == f"s{winners[0]} a"


def test_jobs_are_identified_by_the_content_of_a_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path))
    config = {"name": "r", "models": [{"name": "m"}], "tasks": ["set:mine"], "methods": ["transfer"]}
    tasksets.save(taskset("a b"), "mine")
    before = jobs.job_id(config)
    pinned = jobs.resolve_config(config)
    assert pinned["tasks"] == ["set:mine@v1"]
    tasksets.save(taskset("c d"), "mine", replace=True)
    assert jobs.job_id(config) != before  # same string, new content: another job
    assert jobs.job_id(pinned) == before
    assert load_tasks(pinned["tasks"][0])["t"].pairs[0].good == "a b"  # a queued job keeps its content


def test_each_server_user_has_a_folder_no_other_user_can_replace_list_or_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path))
    alice, bob = tasksets.owned_name("alice", "mine"), tasksets.owned_name("bob", "mine")
    assert (alice, bob) == ("alice/mine", "bob/mine")
    tasksets.save(taskset("a b"), alice)
    second = tasksets.save(taskset("c d"), bob, replace=True)  # bob's "mine" is a first version of his own
    assert second.version == 1 and second.path.parent == tmp_path / "tasksets" / "bob"
    assert load_tasks("set:alice/mine")["t"].pairs[0].good == "a b"  # alice's content is untouched
    assert tasksets.list_sets(owner="alice") == ["alice/mine"] and tasksets.list_sets(owner="bob") == ["bob/mine"]
    assert tasksets.list_sets() == []  # the shared top folder lists no user's sets
    assert tasksets.may_read("alice/mine@v1", "alice") and not tasksets.may_read("alice/mine", "bob")
    assert tasksets.may_read("alice/mine", "root", is_admin=True) and not tasksets.may_read("mine", "bob")
    # an odd user name gets a hashed folder, never a path
    assert tasksets.owned_name("../../etc", "x").startswith("u-") and "/" not in tasksets.owner_folder("a/b")
    for bad in ("../mine", "alice/../bob/mine", "a/b/c", "/etc/passwd", ".hidden", "alice/"):
        with pytest.raises(TaskError, match="not a task-set name"):
            tasksets.resolve(bad)
        with pytest.raises(TaskError, match="not a task-set name"):
            load_tasks(f"set:{bad}")
    config = {"name": "r", "models": [{"name": "m"}], "tasks": ["set:alice/mine"], "methods": ["transfer"]}
    with pytest.raises(jobs.JobError, match="is not yours"):
        jobs.start_job(config, tmp_path, command=["true"], user=SimpleNamespace(name="bob", is_admin=False))
    assert jobs.list_jobs(tmp_path) == []  # refused before anything was queued


def test_results_of_a_users_sets_are_theirs_to_see() -> None:
    """Whose pairs a result shows, from its sources or (older records) its task-set name; who may see it."""
    assert tasksets.owners_of(["builtin:a,b", "set:alice/verbs@v2", "set:shared", "set:bob/x", "set:../up"]) == [
        "alice",
        "bob",
    ]
    assert tasksets.owners_of_name("builtin+alice/verbs@v2") == ["alice"]
    assert tasksets.owners_of_name("blimp+shared") == []
    assert tasksets.result_owners({"owners": [], "tasks": "x/y"}) == []  # written with owners: trusted
    assert tasksets.result_owners({"sources": ["set:bob/s"], "tasks": "bob/s"}) == ["bob"]
    assert tasksets.result_owners({"tasks": "carol/mine"}) == ["carol"]  # legacy record: read from the name
    assert tasksets.may_see([], "bob") and tasksets.may_see(["bob"], "bob")
    assert not tasksets.may_see(["alice"], "bob") and not tasksets.may_see(["alice", "bob"], "bob")
    assert tasksets.may_see(["alice"], "root", is_admin=True)


def test_a_space_records_the_owners_of_its_sets(tmp_path) -> None:
    from dataclasses import replace

    from taskspace_core.results import list_spaces, save_space
    from taskspace_core.store import Store, make_key
    from tests.fixtures_spaces import make_space

    sp = make_space("135M", 135_000_000, 0, 1)
    a, b = make_key("space", n=1), make_key("space", n=2)
    with Store(tmp_path) as store:
        save_space(store, a, replace(sp, config={**sp.config, "run": {"tasks": ["set:alice/verbs", "builtin"]}}))
        save_space(store, b, replace(sp, config={**sp.config, "run": {"tasks": ["builtin"]}}))
        owners = {r["key"]: r["owners"] for r in list_spaces(store)}
    assert owners == {a: ["alice"], b: []}


def test_the_app_lists_only_results_this_user_may_see(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from taskspace_app import auth, reading

    recs = [{"key": "k1", "owners": ["alice"]}, {"key": "k2", "owners": []}, {"key": "k3", "tasks": "alice/old"}]
    for name, admin, keys in (("bob", False, ["k2"]), ("alice", False, ["k1", "k2", "k3"]), ("root", True, None)):
        monkeypatch.setattr(auth, "current_user", lambda n=name, a=admin: SimpleNamespace(name=n, is_admin=a))
        assert [r["key"] for r in reading.visible(recs)] == (keys or ["k1", "k2", "k3"])
