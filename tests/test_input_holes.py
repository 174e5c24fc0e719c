"""Every input hole of issue #11 (item 7 and the paradigm YAML), each tested with the input that opened it."""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest

from taskspace_app import validation
from taskspace_core import pairfiles
from taskspace_core.builtin import MAX_PARADIGM_BYTES, MAX_YAML_DEPTH, ParadigmError, lexicon, load_paradigm_text
from taskspace_core.pairfiles import MAX_SENTENCE_CHARS, read_pair_file

HEADER = "sentence_good,sentence_bad,task"
GOOD_JSON = json.dumps({"sentence_good": "The cat sleeps.", "sentence_bad": "The cat sleep.", "task": "agr"})


def csv_bytes(rows: list[str]) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode("utf-8")


def ten_pairs(task: str = "agr") -> list[str]:
    return [f"The cat {i} sleeps.,The cat {i} sleep.,{task}" for i in range(10)]


# ---------------------------------------------------------------- paradigm YAML


def alias_bomb(levels: int = 7, fanout: int = 9) -> str:
    """Nested anchors, each level an alias list of the one before: ``fanout ** levels`` leaves."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * fanout) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_in_bounded_time_and_memory() -> None:
    bomb = alias_bomb()  # the 258-byte case (the line map had 672,604 entries, 104 MB, 1.4 s)
    assert len(bomb.encode()) < 300
    lexicon()  # loaded once per server, not part of the refusal
    tracemalloc.start()
    t0 = time.process_time()
    with pytest.raises(ParadigmError) as exc:
        load_paradigm_text(bomb, n_pairs=10)
    elapsed = time.process_time() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "anchor" in str(exc.value) and "line 1" in str(exc.value)
    assert elapsed < 0.5, elapsed
    assert peak < 2_000_000, peak  # 9**6 = 531,441 leaves had the aliases been followed


def test_a_lone_alias_or_anchor_is_refused_with_its_line() -> None:
    with pytest.raises(ParadigmError, match=r"line 2\): the text uses an alias \(\*x\)"):
        load_paradigm_text("name: a\ncategory: *x\n", n_pairs=10)
    with pytest.raises(ParadigmError, match=r"anchor \(&n\)"):
        load_paradigm_text("name: &n my_name\n", n_pairs=10)


def test_paradigm_text_over_the_size_cap_is_refused_before_parsing() -> None:
    text = "description: " + "x" * MAX_PARADIGM_BYTES + "\n"
    with pytest.raises(ParadigmError, match="MAX_PARADIGM_BYTES") as exc:
        load_paradigm_text(text, n_pairs=10)
    assert f"{MAX_PARADIGM_BYTES:,}" in str(exc.value)


@pytest.mark.parametrize("text", ["[" * 60_000, "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 200))])
def test_deep_nesting_is_refused_not_a_recursion_crash(text: str) -> None:
    with pytest.raises(ParadigmError, match="MAX_YAML_DEPTH|not valid YAML"):
        load_paradigm_text(text[:MAX_PARADIGM_BYTES], n_pairs=10)


def test_largest_accepted_text_parses_in_bounded_time() -> None:
    """Just under the cap, the worst shape for the line map: a long flat list of small mappings."""
    item = "- {a: 1, b: [x, y]}\n"
    text = "slots:\n" + "".join("  " + item for _ in range((MAX_PARADIGM_BYTES - 20) // (len(item) + 2)))
    assert len(text) <= MAX_PARADIGM_BYTES
    lexicon()
    t0 = time.process_time()  # CPU time: the box is shared, wall time depends on the neighbours
    with pytest.raises(ParadigmError, match="missing required field 'name'"):  # read in full, then checked
        load_paradigm_text(text, n_pairs=10)
    assert time.process_time() - t0 < 2.0  # about 0.5 s on one core
    assert MAX_YAML_DEPTH >= 4  # a real paradigm nests 4 deep (slots > s > where > feature)


def test_a_scan_past_the_time_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from taskspace_core.builtin import yaml_text

    monkeypatch.setattr(yaml_text, "PARSE_TIME_LIMIT_S", -1.0)  # every deadline already passed
    with pytest.raises(ParadigmError, match="PARSE_TIME_LIMIT_S"):
        load_paradigm_text("name: a\n", n_pairs=10)


# ---------------------------------------------------------------- JSONL never raises


@pytest.mark.parametrize(
    "line, needle",
    [
        ('{"sentence_good": ' + "1" * 5000 + "}", "more digits than can be read"),
        ("[" * 100_000 + "]" * 100_000, "too deeply"),
        ('{"task": ' + "[" * 100_000 + "]" * 100_000 + "}", "too deeply"),
    ],
)
def test_jsonl_reader_reports_instead_of_raising(line: str, needle: str) -> None:
    ts, report = read_pair_file(f"{GOOD_JSON}\n{line}\n".encode(), filename="p.jsonl")
    assert ts is None
    hit = [e for e in report.errors if needle in e.message]
    assert len(hit) == 1 and hit[0].row == 2 and hit[0].message.startswith("p.jsonl, line 2:")


# ---------------------------------------------------------------- NUL bytes


def test_nul_byte_after_the_first_4kb_is_an_error_saying_nul() -> None:
    rows = [f"The cat {i} sleeps.,The cat {i} sleep.,agr" for i in range(300)]
    rows[250] = "The dog\x00 sleeps.,The dog sleep.,agr"
    data = csv_bytes(rows)
    assert data.index(b"\x00") > 4096
    ts, report = read_pair_file(data, filename="p.csv")
    assert ts is None and len(report.errors) == 1
    msg = report.errors[0].message
    assert "NUL byte" in msg and "line 252" in msg and "UTF-16" not in msg


def test_an_escaped_nul_in_jsonl_is_an_error_too() -> None:
    line = json.dumps({"sentence_good": "The cat\x00 sleeps.", "sentence_bad": "The cat sleep.", "task": "agr"})
    assert "\\u0000" in line  # valid JSON, no NUL byte in the file
    ts, report = read_pair_file(f"{GOOD_JSON}\n{line}\n".encode(), filename="p.jsonl")
    assert ts is None
    (err,) = report.errors
    assert err.row == 2 and err.column == "sentence_good" and "NUL character" in err.message


def test_utf16_is_still_called_utf16() -> None:
    data = csv_bytes(ten_pairs()).decode().encode("utf-16-le")
    _, report = read_pair_file(data, filename="p.csv")
    assert "UTF-16" in report.errors[0].message and "NUL byte(s)" not in report.errors[0].message


# ---------------------------------------------------------------- invisible characters


def test_zero_width_space_is_a_warning_naming_the_row_and_can_be_stripped() -> None:
    rows = ten_pairs() + ["The cat.,The\u200b cat.,agr"]  # the example: looks like good == bad
    ts, report = read_pair_file(csv_bytes(rows), filename="p.csv")
    assert ts is not None and ts.tasks[0].pairs[-1].bad == "The\u200b cat."
    (warn,) = [w for w in report.warnings if "invisible" in w.message]
    assert warn.row == 12 and warn.column == "sentence_bad" and "U+200B" in warn.message
    assert "row 12" in warn.message and "strip_invisible" in warn.message
    # stripped, the two sentences are the same: the pair is refused, as it should have been
    ts2, report2 = read_pair_file(csv_bytes(rows), filename="p.csv", strip_invisible=True)
    assert ts2 is None and any("same sentence" in e.message and e.row == 12 for e in report2.errors)
    assert any("were removed" in w.message for w in report2.warnings)


def test_bidi_override_in_a_task_name_is_reported() -> None:
    rows = ten_pairs("agr\u202etxt.exe")
    ts, report = read_pair_file(csv_bytes(rows), filename="p.csv", strip_invisible=True)
    assert ts is not None and ts.tasks[0].name == "agrtxt.exe"
    warns = [w for w in report.warnings if "U+202E" in w.message]
    assert [w.row for w in warns] == list(range(2, 12)) and all(w.column == "task" for w in warns)


# ---------------------------------------------------------------- sentence length


def test_a_100k_character_sentence_is_refused_at_validation() -> None:
    long = "word " * 20_000
    rows = ten_pairs() + [f"{long}.,{long}!,agr"]
    ts, report = read_pair_file(csv_bytes(rows), filename="p.csv")
    assert ts is None
    errs = [e for e in report.errors if "characters long" in e.message]
    assert [(e.row, e.column) for e in errs] == [(12, "sentence_good"), (12, "sentence_bad")]
    assert f"limit of {MAX_SENTENCE_CHARS:,}" in errs[0].message and "max_sentence_chars" in errs[0].message
    ts2, _ = read_pair_file(csv_bytes(rows), filename="p.csv", max_sentence_chars=200_000)
    assert ts2 is not None and len(ts2.tasks[0]) == 11


# ---------------------------------------------------------------- the app


def test_an_upload_is_parsed_once_per_content(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = pairfiles.read_pair_file

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(pairfiles, "read_pair_file", counting)
    state: dict = {}
    data = csv_bytes(ten_pairs())
    first = validation.read_upload(data, "p.csv", state)
    for _ in range(3):  # reruns of the page
        assert validation.read_upload(data, "p.csv", state) is first
    assert len(calls) == 1
    other = csv_bytes(ten_pairs("other"))
    assert validation.read_upload(other, "p.csv", state)[0].tasks[0].name == "other"
    validation.read_upload(other, "p.csv", state, strip_invisible=True)  # another option: parsed again
    assert len(calls) == 3


def test_runner_error_with_markdown_is_shown_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from precompute import jobs

    monkeypatch.setattr(jobs, "log_tail", lambda jid, **kw: "")

    def script() -> None:
        from precompute.jobs import JobStatus
        from taskspace_app import jobs_panel

        msg = "TaskError: task '![](http://host/x)' has <b>no</b> pairs"
        jobs_panel.job_card(JobStatus(id="j1", name="[set](http://host/y)", state="failed", message=msg), "k")

    at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception
    shown = at.error[0].value
    assert "![](" not in shown and r"!\[\](http://host/x)" in shown and r"\<b\>" in shown
    assert "[set](" not in at.markdown[0].value
