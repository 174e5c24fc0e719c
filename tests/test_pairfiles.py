"""Tests for taskspace_core.pairfiles: every validation message is triggered by a tiny bad file."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from taskspace_core.pairfiles import (
    Issue,
    PairFileError,
    ValidationReport,
    load_pair_file,
    read_pair_file,
    safe_csv_cell,
    write_pair_file,
)
from taskspace_core.tasks import MinimalPair, Task, TaskError, TaskSet

HEADER = "sentence_good,sentence_bad,task"


def pair_lines(n: int = 10, task: str = "agr", extra: str = "") -> list[str]:
    """``n`` valid CSV data lines for one task (10 by default, so no 'too few pairs' warning)."""
    return [f"The cat {i} sleeps.,The cat {i} sleep.,{task}{extra}" for i in range(n)]


def write(tmp_path: Path, lines: list[str], name: str = "pairs.csv", newline: str = "\n") -> Path:
    p = tmp_path / name
    p.write_bytes(newline.join(lines).encode("utf-8") + newline.encode())
    return p


def only(issues: tuple[Issue, ...], needle: str) -> Issue:
    hits = [i for i in issues if needle in i.message]
    assert len(hits) == 1, [i.message for i in issues]
    return hits[0]


def assert_located(issue: Issue, row: int | None, column: str | None, filename: str = "pairs.csv") -> None:
    """The message names the file, the row and the column, and the fields agree with it."""
    assert issue.message.startswith(filename), issue.message
    assert issue.row == row
    assert issue.column == column
    if row is not None:
        assert f"row {row}" in issue.message or f"line {row}" in issue.message, issue.message
    if column is not None:
        assert column in issue.message, issue.message


# ---------------------------------------------------------------- valid files


def test_valid_csv_with_metadata_and_tags(tmp_path: Path) -> None:
    lines = ["sentence_good,sentence_bad,task,category,field,description,distance,UID"]
    lines += pair_lines(10, "agr", ",agreement,morphology,Subject-verb agreement,short,a1")
    lines += pair_lines(12, "isl", ",island_effects,syntax,,long,i1")
    ts, rep = read_pair_file(write(tmp_path, lines))
    assert rep.ok and rep.errors == () and rep.warnings == ()
    assert ts is not None and ts.name == "pairs" and ts.names == ["agr", "isl"]
    agr = ts["agr"]
    assert (agr.category, agr.field, agr.description) == ("agreement", "morphology", "Subject-verb agreement")
    assert agr.tags == (("UID", "a1"), ("distance", "short"))
    assert agr.pairs[0] == MinimalPair("The cat 0 sleeps.", "The cat 0 sleep.")
    assert ts["isl"].description == ""
    assert (rep.n_rows, rep.n_pairs_kept, rep.task_counts) == (22, 22, (("agr", 10), ("isl", 12)))
    assert rep.task_count_dict == {"agr": 10, "isl": 12}
    assert ts.levels() == ["category", "field", "UID", "distance"]


def test_bytes_and_file_object_input() -> None:
    data = "\n".join([HEADER, *pair_lines(10)]).encode()
    ts, rep = read_pair_file(data, filename="upload.csv", set_name="mine")
    assert rep.ok and ts is not None and ts.name == "mine" and len(ts["agr"]) == 10
    buf = io.BytesIO(data)
    buf.name = "from_widget.csv"  # Streamlit's UploadedFile carries .name
    ts2, rep2 = read_pair_file(buf)
    assert rep2.ok and ts2 is not None and ts2.name == "from_widget"
    assert [t.pairs for t in ts2] == [t.pairs for t in ts]
    ts3, rep3 = read_pair_file(data)  # no name: the format is unknown
    assert ts3 is None and "filename" in rep3.errors[0].message


def test_tsv_and_jsonl_are_read(tmp_path: Path) -> None:
    tsv = ["sentence_good\tsentence_bad\ttask"] + [line.replace(",", "\t") for line in pair_lines(10)]
    ts, rep = read_pair_file(write(tmp_path, tsv, "pairs.tsv"))
    assert rep.ok and ts is not None and ts["agr"].pairs[1].good == "The cat 1 sleeps."
    rows = [
        {"sentence_good": f"A {i}.", "sentence_bad": f"B {i}.", "task": "t", "n": 3, "flag": True} for i in range(10)
    ]
    p = tmp_path / "pairs.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    ts, rep = read_pair_file(p)
    assert rep.ok and ts is not None and ts["t"].tags == (("flag", "true"), ("n", "3"))


@pytest.mark.parametrize("ext", ["csv", "tsv", "jsonl"])
def test_write_then_read_round_trip(tmp_path: Path, ext: str) -> None:
    src = f"file:pairs.{ext}"
    pairs = tuple(MinimalPair(f'She said "hi, there" {i}.', f'She say "hi, there" {i}.') for i in range(10))
    original = TaskSet(
        "pairs",
        (
            Task("agr", pairs, "agreement", "morphology", "S-V agreement", (("UID", "a1"), ("distance", "short")), src),
            Task("npi", pairs[:3] + (MinimalPair("-5 is odd, =1 @x", "+5 is odd"),), "npi", "semantics", "", (), src),
            Task("ëlision", pairs, "", "", "Unicode name", (("distance", "long"),), src),
        ),
    )
    path = write_pair_file(original, tmp_path / f"pairs.{ext}")
    back = load_pair_file(path)
    assert back == original
    assert back["npi"].pairs[-1].good == "-5 is odd, =1 @x"  # written verbatim, no formula quote added
    if ext == "csv":
        header = path.read_text(encoding="utf-8").splitlines()[0]
        assert header == "sentence_good,sentence_bad,task,category,field,description,UID,distance"


def test_write_rejects_unknown_extension_and_clashing_tags(tmp_path: Path) -> None:
    t = Task("t", (MinimalPair("a", "b"),), tags=(("Category", "x"),))
    with pytest.raises(TaskError, match="clash"):
        write_pair_file(TaskSet("s", (t,)), tmp_path / "x.csv")
    with pytest.raises(TaskError, match="unknown file type"):
        write_pair_file(TaskSet("s", (Task("t", (MinimalPair("a", "b"),)),)), tmp_path / "x.xlsx")


def test_reading_writes_nothing(tmp_path: Path) -> None:
    p = write(tmp_path, [HEADER, "x,,t", *pair_lines(3)])
    before = sorted(tmp_path.rglob("*"))
    read_pair_file(p)
    read_pair_file(p.read_bytes(), filename="pairs.csv")
    assert sorted(tmp_path.rglob("*")) == before


# ---------------------------------------------------------------- normalisation (accepted with warnings)


def test_bom_crlf_and_whitespace_are_normalised(tmp_path: Path) -> None:
    lines = ["sentence_good,sentence_bad,task"] + pair_lines(9)
    lines.append('  The  dog\t barks. ,"The dog\r\nbark.", agr ')
    p = tmp_path / "pairs.csv"
    p.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    ts, rep = read_pair_file(p)
    assert rep.ok and ts is not None
    assert ts["agr"].pairs[-1] == MinimalPair("The dog barks.", "The dog bark.")
    assert ts.names == ["agr"] and len(ts["agr"]) == 10
    bom = only(rep.warnings, "byte-order mark")
    assert_located(bom, None, None)
    ws = only(rep.warnings, "stray whitespace")
    assert_located(ws, 11, "sentence_good")
    assert "3 cell(s)" in ws.message and "row 11 (lines 11-12 of the file), column sentence_good" in ws.message
    assert set(ts.warnings) == {w.message for w in rep.warnings}


def test_header_variants_are_accepted_with_a_warning(tmp_path: Path) -> None:
    p = write(tmp_path, ["Sentence Good,sentence-bad,Task", *pair_lines(10)])
    ts, rep = read_pair_file(p)
    assert rep.ok and ts is not None and ts.names == ["agr"]
    w = only(rep.warnings, "'Sentence Good' was read as 'sentence_good'")
    assert_located(w, 1, "A")


def test_nfc_normalisation_makes_decomposed_accents_equal(tmp_path: Path) -> None:
    p = write(tmp_path, [HEADER, *pair_lines(9), "Le cafe\u0301 est bon.,Le café est bon.,agr"])
    ts, rep = read_pair_file(p)
    err = only(rep.errors, "same sentence")
    assert_located(err, 11, "sentence_bad")
    assert only(rep.warnings, "NFC")


# ---------------------------------------------------------------- errors: file level


def test_unknown_extension_lists_accepted_ones(tmp_path: Path) -> None:
    p = tmp_path / "pairs.xlsx"
    p.write_bytes(b"PK\x03\x04")
    ts, rep = read_pair_file(p)
    assert ts is None
    msg = rep.errors[0].message
    assert msg.startswith("pairs.xlsx") and ".csv" in msg and ".tsv" in msg and ".jsonl" in msg and "CSV UTF-8" in msg


def test_size_limit_is_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, [HEADER, *pair_lines(10)])

    def no_open(*a: object, **k: object) -> None:
        raise AssertionError("the file must not be opened")

    monkeypatch.setattr(Path, "open", no_open)
    ts, rep = read_pair_file(p, max_bytes=100)
    assert ts is None and len(rep.errors) == 1
    msg = rep.errors[0].message
    assert msg.startswith("pairs.csv") and "above the limit of 0.0 MB" in msg and "max_bytes" in msg
    ts, rep = read_pair_file(b"x" * 101, filename="pairs.csv", max_bytes=100)
    assert ts is None and "limit" in rep.errors[0].message


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    _, rep = read_pair_file(tmp_path / "nope.csv")
    assert "no such file" in rep.errors[0].message
    _, rep = read_pair_file(b"", filename="pairs.csv")
    assert rep.errors[0].message == "pairs.csv: the file is empty (no header row and no data)"
    _, rep = read_pair_file(HEADER.encode() + b"\n", filename="pairs.csv")
    assert "no data rows" in rep.errors[0].message


def test_non_utf8_file_names_offset_line_cell_and_encoding(tmp_path: Path) -> None:
    lines = [HEADER, *pair_lines(9), "Le café est bon.,Le café sont bon.,agr", "Où est-il ?,Où est-ils ?,agr"]
    p = tmp_path / "pairs.csv"
    data = "\n".join(lines).encode("cp1252")
    p.write_bytes(data)
    ts, rep = read_pair_file(p)
    assert ts is None and len(rep.errors) == 1
    err = rep.errors[0]
    assert_located(err, 11, "sentence_good")
    offset = data.index(b"\xe9")
    assert f"byte 0xE9 at byte offset {offset} (line 11)" in err.message
    assert "Windows-1252" in err.message and "save the file as UTF-8" in err.message
    assert "'Le café est bon.'" in err.message and "2 line(s)" in err.message


def test_mixed_encoding_and_utf16_are_explained() -> None:
    data = "\n".join([HEADER, *pair_lines(9), "naïve,naïf,agr"]).encode() + "\nfa\xe7ade,facade,agr\n".encode("cp1252")
    _, rep = read_pair_file(data, filename="pairs.csv")
    assert "mixes UTF-8" in rep.errors[0].message and "row 12" in rep.errors[0].message
    for enc in ("utf-16", "utf-16-le"):  # with and without a BOM
        _, rep = read_pair_file("\n".join([HEADER, "a,b,c"]).encode(enc), filename="pairs.csv")
        assert len(rep.errors) == 1
        assert "UTF-16" in rep.errors[0].message and "save the file as UTF-8" in rep.errors[0].message


# ---------------------------------------------------------------- errors: columns


@pytest.mark.parametrize(
    ("header", "expect"),
    [
        ("good,bad,task", {"sentence_good": "'good'", "sentence_bad": "'bad'"}),
        ("grammatical,ungrammatical,UID", {"sentence_good": "'grammatical'", "sentence_bad": "'ungr", "task": "'UID'"}),
        ("sentence_1,sentence_2,task", {"sentence_good": "'sentence_1'", "sentence_bad": "'sentence_2'"}),
        ("sentence_god,sentence_bad,tsk", {"sentence_good": "'sentence_god'", "task": "'tsk'"}),
    ],
)
def test_missing_columns_suggest_renames(tmp_path: Path, header: str, expect: dict[str, str]) -> None:
    ts, rep = read_pair_file(write(tmp_path, [header, "a,b,c"]))
    assert ts is None and len(rep.errors) == len(expect)
    for column, found in expect.items():
        err = only(rep.errors, f"required column '{column}' is missing")
        assert_located(err, 1, column)
        assert "row 1 (the header)" in err.message and found in err.message and "rename" in err.message


def test_header_that_is_data_and_wrong_separator(tmp_path: Path) -> None:
    _, rep = read_pair_file(write(tmp_path, ["The cat sleeps.,The cat sleep.,agr"]))
    assert_located(rep.errors[0], 1, None)
    assert "looks like data" in rep.errors[0].message and len(rep.errors) == 4
    _, rep = read_pair_file(write(tmp_path, ["sentence_good;sentence_bad;task", "a;b;c"]))
    assert len(rep.errors) == 1 and "';' as its separator" in rep.errors[0].message
    assert_located(rep.errors[0], 1, "A")


def test_duplicate_and_unnamed_columns(tmp_path: Path) -> None:
    _, rep = read_pair_file(write(tmp_path, ["sentence_good,sentence_bad,task,Task", "a,b,c,d"]))
    err = only(rep.errors, "appears twice")
    assert_located(err, 1, "task")
    assert "columns C and D" in err.message
    _, rep = read_pair_file(write(tmp_path, [HEADER + ",", *[line + ",x" for line in pair_lines(10)]]))
    err = only(rep.errors, "has no name")
    assert_located(err, 1, "D")
    ts, rep = read_pair_file(write(tmp_path, [HEADER + ",,", *[line + ",," for line in pair_lines(10)]]))
    assert rep.ok and ts is not None and ts["agr"].tags == ()  # empty trailing columns are harmless


def test_optional_column_synonym_is_pointed_out(tmp_path: Path) -> None:
    ts, rep = read_pair_file(write(tmp_path, [HEADER + ",linguistics_term", *pair_lines(10, extra=",anaphora")]))
    assert ts is not None and ts["agr"].tags == (("linguistics_term", "anaphora"),)
    w = only(rep.warnings, "rename it to 'category'")
    assert_located(w, 1, "linguistics_term")


# ---------------------------------------------------------------- errors: rows


def test_empty_cells_every_one_reported(tmp_path: Path) -> None:
    lines = [HEADER, *pair_lines(10)]
    lines[2] = ",The cat sleep.,agr"  # row 3
    lines[4] = "The dog barks.,,agr"  # row 5
    lines[6] = "The dog barks.,The dog bark.,   "  # row 7: whitespace only is empty too
    ts, rep = read_pair_file(write(tmp_path, lines))
    assert ts is None and len(rep.errors) == 3
    assert_located(rep.errors[0], 3, "sentence_good")
    assert rep.errors[0].message == "pairs.csv, row 3 (line 3 of the file), column sentence_good: the cell is empty"
    assert_located(rep.errors[1], 5, "sentence_bad")
    assert_located(rep.errors[2], 7, "task")


def test_good_equals_bad_after_normalisation(tmp_path: Path) -> None:
    lines = [HEADER, *pair_lines(10), "The cat  sleeps.,The cat sleeps. ,agr", "Same.,Same.,agr"]
    _, rep = read_pair_file(write(tmp_path, lines))
    assert len(rep.errors) == 2
    assert_located(rep.errors[0], 12, "sentence_bad")
    assert "same sentence 'The cat sleeps.'" in rep.errors[0].message
    assert_located(rep.errors[1], 13, "sentence_bad")


def test_duplicate_pairs_warn_and_keep_one(tmp_path: Path) -> None:
    lines = [
        HEADER,
        *pair_lines(10),
        "The cat 3 sleeps.,The cat 3  sleep.,agr",
        "The cat 0 sleeps.,The cat 0 sleep.,other",
    ]
    ts, rep = read_pair_file(write(tmp_path, lines))
    assert ts is not None and len(ts["agr"]) == 10 and len(ts["other"]) == 1
    w = only(rep.warnings, "duplicate pair")
    assert_located(w, 12, "sentence_good")
    assert "already appear in row 5 (line 5 of the file)" in w.message
    assert rep.n_rows == 12 and rep.n_pairs_kept == 11


def test_small_task_warns(tmp_path: Path) -> None:
    ts, rep = read_pair_file(write(tmp_path, [HEADER, *pair_lines(10), *pair_lines(4, "tiny")]))
    assert ts is not None and len(ts["tiny"]) == 4
    w = only(rep.warnings, "task 'tiny' has only 4 pair(s)")
    assert_located(w, 12, "task")
    assert "at least 10" in w.message


def test_ragged_rows_name_row_and_column(tmp_path: Path) -> None:
    lines = [HEADER, *pair_lines(10)]
    lines[3] = "The cat, I think, sleeps.,The cat sleep.,agr"  # row 4: unquoted commas
    lines[6] = "The dog barks.,agr"  # row 7: a cell short
    ts, rep = read_pair_file(write(tmp_path, lines))
    assert ts is None and len(rep.errors) == 2
    assert_located(rep.errors[0], 4, "D")
    assert "5 cells but the header has 3 columns" in rep.errors[0].message and "double quotes" in rep.errors[0].message
    assert_located(rep.errors[1], 7, "task")


def test_unclosed_quote_and_row_versus_line_numbers(tmp_path: Path) -> None:
    lines = [HEADER, '"The cat\nsleeps.",The cat sleep.,agr', ",x,agr"]  # row 2 spans lines 2-3
    _, rep = read_pair_file(write(tmp_path, lines))
    assert_located(rep.errors[0], 3, "sentence_good")
    assert "row 3 (line 4 of the file)" in rep.errors[0].message
    _, rep = read_pair_file(write(tmp_path, [HEADER, *pair_lines(3), '"The cat,sleeps,agr', "a,b,agr"]))
    err = only(rep.errors, "never closed")
    assert_located(err, 5, "sentence_bad")
    assert "lines 5-6" in err.message


def test_rows_of_a_task_disagreeing_on_tag_and_category(tmp_path: Path) -> None:
    lines = ["sentence_good,sentence_bad,task,category,distance"] + pair_lines(10, extra=",agreement,short")
    lines[4] = lines[4].replace(",short", ",long")  # row 5
    lines[8] = lines[8].replace(",agreement,", ",binding,")  # row 9
    ts, rep = read_pair_file(write(tmp_path, lines))
    assert ts is None and len(rep.errors) == 2
    cat = only(rep.errors, "disagree on category")
    assert_located(cat, 9, "category")
    assert "task 'agr'" in cat.message and "row 2 (line 2 of the file) has 'agreement'" in cat.message
    assert "row 9 (line 9 of the file) has 'binding'" in cat.message
    tag = only(rep.errors, "disagree on distance")
    assert_located(tag, 5, "distance")


def test_differing_descriptions_warn_and_first_wins(tmp_path: Path) -> None:
    lines = [HEADER + ",description"] + pair_lines(10, extra=",")
    lines[1] += "First."
    lines[3] += "Other."
    ts, rep = read_pair_file(write(tmp_path, lines))
    assert ts is not None and ts["agr"].description == "First."
    assert_located(only(rep.warnings, "different description"), 4, "description")


def test_error_cap_reports_the_rest_as_a_count(tmp_path: Path) -> None:
    lines = [HEADER] + [f",bad {i},t" for i in range(60)]
    ts, rep = read_pair_file(write(tmp_path, lines))
    assert ts is None and len(rep.errors) == 51
    assert rep.errors[-1].message.startswith("pairs.csv: ... and 10 more errors")
    assert rep.errors[49].row == 51


# ---------------------------------------------------------------- errors: JSONL


def test_malformed_jsonl_line_and_bad_values(tmp_path: Path) -> None:
    good = [json.dumps({"sentence_good": f"A {i}.", "sentence_bad": f"B {i}.", "task": "t"}) for i in range(10)]
    lines = good[:3] + ['{"sentence_good": "A.", "sentence_bad": "B." "task": "t"}'] + good[3:]
    lines.append(json.dumps({"sentence_good": "C.", "task": "t"}))
    lines.append(json.dumps({"sentence_good": ["C."], "sentence_bad": "D.", "task": "t"}))
    lines.append("[1, 2]")
    ts, rep = read_pair_file(write(tmp_path, lines, "pairs.jsonl"))
    assert ts is None and len(rep.errors) == 4
    bad_json = only(rep.errors, "not valid JSON")
    assert_located(bad_json, 4, None, "pairs.jsonl")
    assert "line 4" in bad_json.message and "Expecting ',' delimiter at character" in bad_json.message
    assert_located(only(rep.errors, "key 'sentence_bad' is missing"), 12, "sentence_bad", "pairs.jsonl")
    assert_located(only(rep.errors, "must be text"), 13, "sentence_good", "pairs.jsonl")
    assert_located(only(rep.errors, "expected a JSON object"), 14, None, "pairs.jsonl")


def test_csv_named_jsonl_is_pointed_out(tmp_path: Path) -> None:
    _, rep = read_pair_file(write(tmp_path, [HEADER, *pair_lines(2)], "pairs.jsonl"))
    assert "looks like a CSV/TSV header" in rep.errors[0].message


# ---------------------------------------------------------------- API details


def test_load_pair_file_raises_with_every_error(tmp_path: Path) -> None:
    lines = [HEADER, *pair_lines(10), ",x,agr", "y,,agr"]
    with pytest.raises(PairFileError) as ei:
        load_pair_file(write(tmp_path, lines))
    assert isinstance(ei.value, TaskError)
    msg = str(ei.value)
    assert "2 problem(s)" in msg and "row 12" in msg and "row 13" in msg and "header is row 1" in msg
    assert len(ei.value.report.errors) == 2
    assert load_pair_file(write(tmp_path, [HEADER, *pair_lines(10)]))["agr"].name == "agr"


def test_report_is_frozen_and_summarises(tmp_path: Path) -> None:
    _, rep = read_pair_file(write(tmp_path, [HEADER, *pair_lines(3)]))
    assert isinstance(rep, ValidationReport)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.n_rows = 5  # type: ignore[misc]
    text = rep.summary()
    assert text.startswith("pairs.csv: 3 data rows, 3 pairs kept in 1 tasks; 0 errors, 1 warnings")
    assert "warning: pairs.csv" in text and str(rep.warnings[0]) == rep.warnings[0].message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1+2", "'+1+2"),
        ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("-0.53", "-0.53"),
        ("+1e-3", "+1e-3"),
        ("The cat sleeps.", "The cat sleeps."),
        ("", ""),
    ],
)
def test_safe_csv_cell(value: str, expected: str) -> None:
    assert safe_csv_cell(value) == expected


def test_jsonl_missing_required_key_everywhere() -> None:
    data = b'{"good": "A.", "bad": "B.", "task": "t"}\n'
    ts, rep = read_pair_file(data, filename="pairs.ndjson")
    assert ts is None and len(rep.errors) == 2
    err = only(rep.errors, "required key 'sentence_good' is missing")
    assert_located(err, None, "sentence_good", "pairs.ndjson")
    assert "'good'" in err.message and "rename" in err.message
