"""Records at the process boundary: JSON round-trips, atomic progress files, tolerant reading."""

from __future__ import annotations

import json
from pathlib import Path

from taskspace_core.records import PlanSummary, ProgressRecord, SpaceRecord


def test_every_record_round_trips_through_json() -> None:
    plan = PlanSummary("c", ["m"], 3, 15, 5, 10, {"base": {"total": 3, "cached": 3}}, 12.5)
    prog = ProgressRecord("running", 4, 15, {"base": [3, 3], "ftgd": [1, 3]}, 30.0, 2.0, "m", 1.0)
    space = SpaceRecord("space/x", "space", "m", "fp", None, "135M", 0, "s", "t", 3, ["transfer"], 5.0, 10)
    for rec in (plan, prog, space):
        assert type(rec).from_json(rec.to_json()) == rec
        assert json.loads(rec.to_json()) == rec.to_dict()
    assert plan["units_todo"] == 10 and plan.get("missing", "?") == "?" and "by_type" in plan


def test_progress_is_written_whole_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    assert ProgressRecord.read(path) is None  # no file yet
    ProgressRecord("running", 1, 2).write(path)
    assert ProgressRecord.read(path) == ProgressRecord("running", 1, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]  # no temporary file left behind
    path.write_text("{not json")
    assert ProgressRecord.read(path) is None


def test_a_final_state_is_never_overwritten_and_new_keys_are_ignored() -> None:
    done = ProgressRecord("done", 2, 2, message="finished")
    assert done.finished("failed", "late") == done
    running = ProgressRecord("running", 1, 2)
    failed = running.finished("failed", "exit 1")
    assert failed.state == "failed" and failed.message == "exit 1" and failed.done == 1 and failed.final
    newer = ProgressRecord.from_dict({"state": "running", "done": 1, "written_by": "a later version"})
    assert newer == ProgressRecord("running", 1)
