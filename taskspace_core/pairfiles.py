"""Read and validate a user's file of minimal pairs (CSV / TSV / JSONL) into a :class:`TaskSet`.

Format: one minimal pair per row, with required columns ``sentence_good``, ``sentence_bad``
and ``task``; optional ``category``, ``field`` and ``description``; every other column is a
free tag column (a possible hypothesis level, METHODS.md s1 and s6).

Validation is written for linguists, not programmers: every problem names the file, the
row (counted as a spreadsheet shows it: the header is row 1, so the first data row is
row 2; the physical line of the file is given too) and the column, and says how to fix it.
All problems are collected (up to a cap) instead of stopping at the first one.

Reading is pure: :func:`read_pair_file` and :func:`load_pair_file` never write anything
anywhere (no cache, no temp file), so nothing is stored before validation has passed.
:func:`write_pair_file` is the only writer and only runs when called explicitly.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from taskspace_core.tasks import MinimalPair, Task, TaskError, TaskSet

DEFAULT_MAX_BYTES = 50_000_000
MAX_ISSUES = 50  # per severity; the rest are counted in a final "... and N more" line
MIN_PAIRS_PER_TASK = 10

REQUIRED_COLUMNS = ("sentence_good", "sentence_bad", "task")
OPTIONAL_COLUMNS = ("category", "field", "description")
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

#: extension -> field delimiter, or "jsonl" for one JSON object per line
FORMATS: dict[str, str] = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_ACCEPTED = ".csv (comma-separated), .tsv or .tab (tab-separated), .jsonl or .ndjson (one JSON object per line)"

# Names people (and other benchmarks) use for our columns; only used to suggest a rename.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "sentence_good": (
        "good",
        "grammatical",
        "sentence_1",
        "sentence1",
        "sent_good",
        "good_sentence",
        "acceptable",
        "correct",
        "gram",
        "positive",
        "s_good",
        "sentence_grammatical",
        "ok",
        "sentence_a",
    ),
    "sentence_bad": (
        "bad",
        "ungrammatical",
        "sentence_2",
        "sentence2",
        "sent_bad",
        "bad_sentence",
        "unacceptable",
        "incorrect",
        "ungram",
        "negative",
        "s_bad",
        "sentence_ungrammatical",
        "star",
        "sentence_b",
    ),
    "task": ("paradigm", "uid", "phenomenon", "task_name", "condition", "name", "taskname", "subtask"),
    "category": ("linguistics_term", "phenomenon", "term", "cat"),
    "field": ("domain", "area", "subfield"),
    "description": ("desc", "notes", "comment", "comments"),
}

_WS = re.compile(r"\s+")
_SURROGATE = re.compile("[\udc80-\udcff]")  # undecodable bytes, kept by errors="surrogateescape"
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class PairFileError(TaskError):
    """A pair file failed validation; ``report`` holds every problem found."""

    def __init__(self, message: str, report: ValidationReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class Issue:
    """One problem; ``message`` is complete on its own (it names file, row and column)."""

    severity: Literal["error", "warning"]
    message: str
    row: int | None = None  # spreadsheet row (header = 1) for CSV/TSV, line number for JSONL
    column: str | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ValidationReport:
    """Everything found while reading one file. The file loads only when ``errors`` is empty."""

    filename: str
    errors: tuple[Issue, ...]
    warnings: tuple[Issue, ...]
    n_rows: int  # non-blank data rows read
    n_pairs_kept: int  # pairs that passed the row checks, duplicates removed
    task_counts: tuple[tuple[str, int], ...] = ()  # (task, pairs kept), in file order

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def task_count_dict(self) -> dict[str, int]:
        return dict(self.task_counts)

    def summary(self) -> str:
        """Multi-line text for a log or an error box."""
        head = (
            f"{self.filename}: {self.n_rows} data rows, {self.n_pairs_kept} pairs kept in "
            f"{len(self.task_counts)} tasks; {len(self.errors)} errors, {len(self.warnings)} warnings"
            + _numbering_note(self.filename)
            + "."
        )
        lines = [head]
        lines += [f"  error: {i.message}" for i in self.errors]
        lines += [f"  warning: {i.message}" for i in self.warnings]
        return "\n".join(lines)


# ---------------------------------------------------------------- helpers


def _numbering_note(filename: str) -> str:
    """The row-numbering convention, stated wherever a list of problems is shown (not needed for JSONL)."""
    if Path(filename).suffix.lower() in (".jsonl", ".ndjson"):
        return ""
    return " (rows are numbered as in a spreadsheet: the header is row 1)"


def _canon(name: str) -> str:
    """Canonical form of a column name: 'Sentence Good' and 'sentence-good' -> 'sentence_good'."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _col_letter(i: int) -> str:
    """Spreadsheet column letter for a 0-based index (0 -> A, 26 -> AA)."""
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _fmt_mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _short(value: str, n: int = 60) -> str:
    value = _SURROGATE.sub("\ufffd", value)
    return repr(value if len(value) <= n else value[: n - 1] + "…")


def _as_cp1252(value: str) -> str:
    return value.encode("utf-8", "surrogateescape").decode("cp1252", "replace")


class _Collector:
    """Collects issues, keeping the first MAX_ISSUES of each severity and counting the rest."""

    def __init__(self, filename: str, cap: int = MAX_ISSUES) -> None:
        self.filename = filename
        self.cap = cap
        self.issues: dict[str, list[Issue]] = {"error": [], "warning": []}
        self.dropped = {"error": 0, "warning": 0}

    def where(self, where: str | None, column: str | None) -> str:
        parts = [self.filename]
        if where:
            parts.append(where)
        if column:
            parts.append(f"column {column}")
        return ", ".join(parts)

    def add(
        self,
        severity: Literal["error", "warning"],
        text: str,
        *,
        where: str | None = None,
        row: int | None = None,
        column: str | None = None,
        front: bool = False,
    ) -> None:
        issue = Issue(severity, f"{self.where(where, column)}: {text}", row, column)
        bucket = self.issues[severity]
        if front:
            bucket.insert(0, issue)
            if len(bucket) > self.cap:
                bucket.pop()
                self.dropped[severity] += 1
        elif len(bucket) < self.cap:
            bucket.append(issue)
        else:
            self.dropped[severity] += 1

    def error(
        self,
        text: str,
        *,
        where: str | None = None,
        row: int | None = None,
        column: str | None = None,
        front: bool = False,
    ) -> None:
        self.add("error", text, where=where, row=row, column=column, front=front)

    def warning(
        self, text: str, *, where: str | None = None, row: int | None = None, column: str | None = None
    ) -> None:
        self.add("warning", text, where=where, row=row, column=column)

    @property
    def has_errors(self) -> bool:
        return bool(self.issues["error"])

    def final(self, severity: Literal["error", "warning"]) -> tuple[Issue, ...]:
        out = list(self.issues[severity])
        n = self.dropped[severity]
        if n:
            what = "errors" if severity == "error" else "warnings"
            out.append(
                Issue(
                    severity,
                    f"{self.filename}: ... and {n} more {what} not listed (only the first "
                    f"{self.cap} are shown; fix these and load the file again)",
                )
            )
        return tuple(out)


@dataclass
class _Record:
    row: int  # number the user sees (spreadsheet row, or JSONL line)
    values: list[str | None]  # aligned with the column list; None = key absent (JSONL)
    lines: tuple[int, int] | None = None  # first and last line of the file (CSV/TSV); None for JSONL

    @property
    def where(self) -> str:
        """E.g. 'row 17 (line 17 of the file)'; built only when a message needs it (large files)."""
        return _where(self.row, self.lines)


def _where(row: int, lines: tuple[int, int] | None) -> str:
    if lines is None:
        return f"line {row}"
    start, end = lines
    span = f"line {start}" if start == end else f"lines {start}-{end}"
    return f"row {row} ({span} of the file)"


@dataclass
class _Decoded:
    text: str
    bad_offset: int | None = None  # first byte that is not UTF-8
    bad_byte: int = 0
    bad_line: int | None = None
    bad_lines: int = 0
    guess: str = ""


@dataclass
class _TaskAcc:
    """Accumulates one task's rows while reading."""

    first: _Record
    pairs: dict[tuple[str, str], _Record] = field(default_factory=dict)  # pair -> the row it came from
    meta: dict[str, dict[str, _Record]] = field(default_factory=dict)  # column -> value -> first row with it


# ---------------------------------------------------------------- reading bytes and decoding


def _read_source(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
    filename: str | None,
    max_bytes: int,
) -> tuple[str, str, bytes | None, _Collector]:
    """Return (display name, extension, bytes or None on error, collector)."""
    is_path = isinstance(source, (str, os.PathLike))
    if filename is None:
        filename = Path(source).name if is_path else str(getattr(source, "name", "") or "")  # type: ignore[arg-type]
    display = Path(filename).name if filename else "(uploaded file)"
    c = _Collector(display)
    ext = Path(filename).suffix.lower() if filename else ""
    if ext not in FORMATS:
        if not filename:
            c.error(f"no file name was given, so the format is unknown; pass filename= ending in one of: {_ACCEPTED}")
        else:
            hint = ""
            if ext in (".xlsx", ".xls", ".ods", ".numbers"):
                hint = " Spreadsheets must be exported first: in Excel use Save As > 'CSV UTF-8 (Comma delimited)'."
            elif ext == ".json":
                hint = " A .json file must be one JSON object per line; if it is, rename it to .jsonl."
            elif ext == ".txt":
                hint = " If the file is tab- or comma-separated, rename it to .tsv or .csv."
            c.error(f"unknown file type '{ext or '(no extension)'}'; accepted: {_ACCEPTED}.{hint}")
        return display, ext, None, c

    def too_big(size: str) -> None:
        c.error(
            f"the file is {size}, above the limit of {_fmt_mb(max_bytes)}; split it into smaller files "
            f"(e.g. one per group of tasks) or raise the limit (max_bytes)"
        )

    if is_path:
        path = Path(source)  # type: ignore[arg-type]
        if not path.is_file():
            c.error(f"no such file: '{path}'")
            return display, ext, None, c
        size = path.stat().st_size
        if size > max_bytes:  # decided from the size alone: the file is not read
            too_big(_fmt_mb(size))
            return display, ext, None, c
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        too_big(f"over {_fmt_mb(max_bytes)}" if len(data) == max_bytes + 1 else _fmt_mb(len(data)))
        return display, ext, None, c
    return display, ext, data, c


def _decode(data: bytes, c: _Collector) -> _Decoded | None:
    if data.startswith(codecs.BOM_UTF8):
        c.warning(
            "the file starts with a byte-order mark (BOM, added by Excel's 'CSV UTF-8'); it was removed "
            "(nothing to do)",
            where="line 1",
        )
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data[:4096]:
        c.error(
            "the file is saved as UTF-16 (Excel calls it 'Unicode Text'; it has NUL bytes); save the file as UTF-8 "
            "(Excel: Save As > 'CSV UTF-8 (Comma delimited)')",
            where="line 1",
        )
        return None
    try:
        return _Decoded(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        offset = e.start
    text = data.decode("utf-8", "surrogateescape")
    bad_lines = sum(1 for ln in data.split(b"\n") if not _is_utf8(ln))
    mixed = re.search("[^\x00-\x7f\udc80-\udcff]", text) is not None
    try:
        data.decode("cp1252")
        cp1252 = True
    except UnicodeDecodeError:
        cp1252 = False
    if mixed:
        guess = "the file mixes UTF-8 with another encoding (probably text pasted from a Windows-1252 file)"
    elif cp1252:
        c1 = re.search(rb"[\x80-\x9f]", data) is not None
        guess = "the file looks like it was saved as Windows-1252 (cp1252, Excel's 'CSV (Comma delimited)')" + (
            "" if c1 else " or Latin-1 (ISO-8859-1)"
        )
    else:
        guess = "the file is in an unknown legacy encoding"
    return _Decoded(text, offset, data[offset], data.count(b"\n", 0, offset) + 1, bad_lines, guess)


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _encoding_error(dec: _Decoded, c: _Collector, columns: list[str], records: list[_Record], is_table: bool) -> None:
    """One error for the whole file, placed first, pointing at the first affected cell."""
    fix = (
        "save the file as UTF-8 (Excel: Save As > 'CSV UTF-8 (Comma delimited)'; LibreOffice: "
        "Save As > tick 'Edit filter settings' > Character set 'Unicode (UTF-8)')"
    )
    where, row, column, shown = f"line {dec.bad_line}", None, None, ""
    for i, name in enumerate(columns if is_table else []):
        if _SURROGATE.search(name):
            where, row, column, shown = "row 1 (the header)", 1, _col_letter(i), _as_cp1252(name)
            break
    else:
        for r in records:
            hit = next((i for i, v in enumerate(r.values) if v and _SURROGATE.search(v)), None)
            if hit is not None:
                column = columns[hit].strip() or _col_letter(hit)
                where, row, shown = r.where, r.row, _as_cp1252(r.values[hit] or "")
                break
    seen = f"; read as Windows-1252 this cell says {_short(shown)}" if shown and "cp1252" in dec.guess else ""
    c.error(
        f"the file is not valid UTF-8: byte 0x{dec.bad_byte:02X} at byte offset {dec.bad_offset} (line "
        f"{dec.bad_line}) is not UTF-8{seen}. {dec.bad_lines} line(s) of the file have such bytes. "
        f"{dec.guess[0].upper()}{dec.guess[1:]}; {fix}",
        where=where,
        row=row,
        column=column,
        front=True,
    )


# ---------------------------------------------------------------- parsing


def _parse_delimited(text: str, delim: str, c: _Collector) -> tuple[list[str], list[_Record], int] | None:
    """Header + records with exact spreadsheet row and file line numbers; ragged rows become errors."""
    sep = "comma" if delim == "," else "tab"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    header: list[str] | None = None
    records: list[_Record] = []
    prev_line, row, n_data, n_cols = 0, 0, 0, -1
    extra_empty = 0
    try:
        for cells in reader:
            row += 1
            start, end = prev_line + 1, reader.line_num
            prev_line = end
            if not any(cells) or not any(x.strip() for x in cells):
                continue  # blank row (also ",,,"): spreadsheets export these, skip silently
            if len(cells) == n_cols:  # the common case: no per-row string building
                n_data += 1
                records.append(_Record(row, cells, (start, end)))
                continue
            where = _where(row, (start, end))
            if header is None:
                header = cells
                n_cols = len(header)
                if row != 1:
                    c.warning(f"the header is on row {row}; the blank rows above it were skipped", where=where, row=row)
                continue
            n_data += 1
            n = len(header)
            if len(cells) > n:
                extra = cells[n:]
                if not any(x.strip() for x in extra):
                    extra_empty += 1
                    cells = cells[:n]
                else:
                    first = n + next(i for i, x in enumerate(extra) if x.strip())
                    quote_hint = '; a double quote (") opened here seems never to be closed' if start != end else ""
                    c.error(
                        f"the row has {len(cells)} cells but the header has {n} columns: there is an extra value "
                        f"{_short(cells[first])} in column {_col_letter(first)}, after the last column "
                        f"'{header[-1]}'. A cell probably contains a {sep} -- put such cells in double quotes "
                        f"(spreadsheet programs do this when they save){quote_hint}",
                        where=where,
                        row=row,
                        column=_col_letter(first),
                    )
                    continue
            elif len(cells) < n:
                missing = header[len(cells) :]
                quote_hint = (
                    '; the row runs over several lines, so a double quote (") opened in it is probably never closed'
                    if start != end
                    else ""
                )
                c.error(
                    f"the row has {len(cells)} cells but the header has {n} columns, so column(s) "
                    f"{', '.join(repr(m) for m in missing)} have no cell; check for a missing {sep}{quote_hint}",
                    where=where,
                    row=row,
                    column=missing[0] or _col_letter(len(cells)),
                )
                continue
            records.append(_Record(row, list(cells), (start, end)))
    except csv.Error as e:
        msg = str(e)
        if "field larger than field limit" in msg:
            msg = 'a cell is extremely long, which usually means a double quote (") opened near here is never closed'
        c.error(
            f"the file could not be read past this point as {sep}-separated text ({msg})",
            where=f"line {reader.line_num}",
            row=reader.line_num,
        )
    if header is None:
        c.error("the file is empty (no header row and no data)")
        return None
    if extra_empty:
        c.warning(f"{extra_empty} row(s) had extra empty cells after the last column; they were ignored")
    return header, records, n_data


def _json_kind(value: object) -> str:
    return {list: "a list [...]", dict: "an object {...}"}.get(type(value), f"a {type(value).__name__}")


def _json_value(value: object) -> str | None:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


def _parse_jsonl(text: str, c: _Collector) -> tuple[list[str], list[_Record], int] | None:
    columns: dict[str, None] = {}
    objs: list[tuple[int, dict[str, object]]] = []
    n_data = 0
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        where = f"line {lineno}"
        n_data += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            hint = ""
            if not objs and not line.lstrip().startswith("{") and ("," in line or "\t" in line):
                hint = "; this looks like a CSV/TSV header: give the file a .csv or .tsv extension"
            c.error(
                f"not valid JSON ({e.msg} at character {e.colno}); each line must be one JSON object such as "
                f'{{"sentence_good": "...", "sentence_bad": "...", "task": "..."}}{hint}',
                where=where,
                row=lineno,
            )
            continue
        if not isinstance(obj, dict):
            c.error(f"expected a JSON object {{...}} but found {_json_kind(obj)}", where=where, row=lineno)
            continue
        for k in obj:
            columns.setdefault(str(k), None)
        objs.append((lineno, obj))
    if not objs and not c.has_errors:
        c.error("the file is empty (no JSON lines)")
        return None
    cols = list(columns)
    records = []
    for lineno, obj in objs:
        values: list[str | None] = []
        ok = True
        for k in cols:
            if k not in obj:
                values.append(None)
                continue
            v = _json_value(obj[k])
            if v is None:
                c.error(
                    f"the value must be text, but it is {_json_kind(obj[k])}",
                    where=f"line {lineno}",
                    row=lineno,
                    column=k,
                )
                ok = False
            values.append(v)
        if ok:
            records.append(_Record(lineno, values))
    return cols, records, n_data


# ---------------------------------------------------------------- validation


def _suggest(missing: str, available: Sequence[str]) -> list[str]:
    """Header names that may be meant as ``missing``: known synonyms first, then close spellings."""
    by_canon = {_canon(a): a for a in available if a.strip()}
    found = [by_canon[s] for s in _SYNONYMS.get(missing, ()) if s in by_canon]
    for m in difflib.get_close_matches(missing, list(by_canon), n=3, cutoff=0.6):
        if by_canon[m] not in found:
            found.append(by_canon[m])
    return found


def _validate(
    raw_columns: list[str], records: list[_Record], c: _Collector, is_table: bool
) -> tuple[list[tuple[str, _TaskAcc]], dict[str, str]] | None:
    """Check columns and rows; return the tasks (file order) and their descriptions."""
    header_where = "row 1 (the header)" if is_table else None
    # -- columns
    columns: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_columns):
        name = _SURROGATE.sub("\ufffd", raw.strip())
        canon = _canon(name)
        if canon in KNOWN_COLUMNS and name != canon:
            c.warning(
                f"column '{name}' was read as '{canon}'",
                where=header_where,
                column=_col_letter(i) if is_table else name,
                row=1 if is_table else None,
            )
            name = canon
        if name and name in seen:
            c.error(
                f"column '{name}' appears twice (columns {_col_letter(seen[name])} and {_col_letter(i)}); "
                f"rename or delete one of them",
                where=header_where,
                row=1 if is_table else None,
                column=name,
            )
        seen.setdefault(name, i)
        columns.append(name)
    for i, name in enumerate(columns):
        if not name:
            used = next((r for r in records if r.values[i] and r.values[i].strip()), None)  # type: ignore[union-attr]
            if used is not None:
                c.error(
                    f"column {_col_letter(i)} has no name in the header but holds values (e.g. "
                    f"{used.where}: {_short(used.values[i] or '')}); give it a name (it becomes a tag column) "
                    f"or delete the column",
                    where=header_where,
                    row=1 if is_table else None,
                    column=_col_letter(i),
                )
    missing = [m for m in REQUIRED_COLUMNS if m not in seen]
    if missing:
        if is_table and len(columns) == 1 and any(sep in columns[0] for sep in (";", "\t", ",", "|")):
            sep = next(s for s in (";", "\t", ",", "|") if s in columns[0])
            c.error(
                f"the header has a single column {_short(columns[0])}: the file seems to use {sep!r} as its "
                f"separator (European spreadsheet settings often use ';'); save it comma-separated as .csv or "
                f"tab-separated as .tsv, with columns {', '.join(REQUIRED_COLUMNS)}",
                where=header_where,
                row=1,
                column="A",
            )
            return None
        others = [n for n in columns if n and n not in KNOWN_COLUMNS]
        if is_table and not any(_suggest(m, others) for m in missing) and any(" " in n for n in columns):
            c.error(
                "the first row looks like data rather than column names; add a header row "
                f"'{','.join(REQUIRED_COLUMNS)}' above it",
                where=header_where,
                row=1,
            )
        noun = "column" if is_table else "key"
        for m in missing:
            sugg = _suggest(m, others)
            if sugg:
                hint = f"found {' or '.join(repr(s) for s in sugg)}, which may be it -- rename that column to '{m}'"
            else:
                hint = f"the file has {noun}s {', '.join(repr(n) for n in columns if n) or '(none)'}"
            c.error(
                f"the required {noun} '{m}' is missing; {hint}",
                where=header_where,
                row=1 if is_table else None,
                column=m,
            )
        return None
    for m in ("category", "field", "description"):
        if m not in seen:
            sugg = _optional_suggestions(m, columns)
            if sugg:
                c.warning(
                    f"column {sugg[0]!r} is read as a free tag; if it is the task's {m}, rename it to '{m}'",
                    where=header_where,
                    row=1 if is_table else None,
                    column=sugg[0],
                )

    idx = dict(seen)
    meta_cols = [n for n in columns if n and n not in ("sentence_good", "sentence_bad", "task", "description")]
    i_desc = idx.get("description")

    # -- rows
    tasks: dict[str, _TaskAcc] = {}
    descriptions: dict[str, tuple[str, _Record]] = {}  # task -> (value, first row with it)
    ws_cells, ws_first, ws_row, ws_col = 0, "", 0, ""  # count, and where the first one was
    nfc_cells = 0
    named = [(i, name) for i, name in enumerate(columns) if name]
    normalize = unicodedata.normalize
    for r in records:
        if not is_table and not any(v and v.strip() for v in r.values):
            continue  # CSV blank rows were dropped while parsing
        vals: dict[str, str] = {}
        for i, name in named:
            raw = r.values[i]
            if raw is None:
                vals[name] = ""
                continue
            nfc = raw if raw.isascii() else normalize("NFC", raw)
            norm = " ".join(nfc.split())  # = trim + collapse every whitespace run, faster than a regex
            if nfc != raw:
                nfc_cells += 1
            if norm != nfc:
                ws_cells += 1
                if not ws_first:
                    ws_first, ws_row, ws_col = r.where, r.row, name
            vals[name] = norm
        bad_row = False
        for m in REQUIRED_COLUMNS:
            if not vals[m]:
                absent = r.values[idx[m]] is None
                what = f"the key '{m}' is missing from this line" if absent else "the cell is empty"
                c.error(what, where=r.where, row=r.row, column=m)
                bad_row = True
        if bad_row:
            continue
        good, bad, task = vals["sentence_good"], vals["sentence_bad"], vals["task"]
        if good == bad:
            c.error(
                f"sentence_good and sentence_bad are the same sentence {_short(good)} (after normalising "
                f"spaces); a minimal pair needs two different sentences",
                where=r.where,
                row=r.row,
                column="sentence_bad",
            )
            continue
        acc = tasks.get(task)
        if acc is None:
            acc = tasks[task] = _TaskAcc(r)
        for name in meta_cols:  # before the duplicate check: a repeated row must agree too
            acc.meta.setdefault(name, {}).setdefault(vals[name], r)
        if i_desc is not None and vals["description"]:
            prev = descriptions.get(task)
            if prev is None:
                descriptions[task] = (vals["description"], r)
            elif prev[0] != vals["description"]:
                c.warning(
                    f"task '{task}' has a different description here than in {prev[1].where}; the first one is used",
                    where=r.where,
                    row=r.row,
                    column="description",
                )
        if (good, bad) in acc.pairs:
            c.warning(
                f"duplicate pair: the same sentence_good and sentence_bad already appear in "
                f"{acc.pairs[(good, bad)].where} for task '{task}'; one copy was kept",
                where=r.where,
                row=r.row,
                column="sentence_good",
            )
            continue
        acc.pairs[(good, bad)] = r
    if ws_cells:
        c.warning(
            f"stray whitespace (spaces at the start or end, repeated spaces, tabs or line breaks inside a "
            f"cell) was tidied in {ws_cells} cell(s); this is the first of them",
            where=ws_first,
            row=ws_row,
            column=ws_col,
        )
    if nfc_cells:
        c.warning(
            f"{nfc_cells} cell(s) had accents stored as separate combining characters; they were converted "
            f"to the standard composed form (Unicode NFC) so that identical-looking sentences compare equal"
        )

    # -- tasks
    for name, acc in tasks.items():
        for col, values in acc.meta.items():
            if len(values) > 1:
                (v1, r1), (v2, r2) = list(values.items())[:2]
                w1, w2 = r1.where, r2.where
                c.error(
                    f"rows of task '{name}' disagree on {col}: {w1} has {_short(v1) if v1 else 'an empty cell'}"
                    f" but {w2} has {_short(v2) if v2 else 'an empty cell'}; a task's {col} must be the same "
                    f"on all of its rows",
                    where=None,
                    row=r2.row,
                    column=col,
                )
        if len(acc.pairs) < MIN_PAIRS_PER_TASK:
            c.warning(
                f"task '{name}' has only {len(acc.pairs)} pair(s), starting at {acc.first.where}; at least "
                f"{MIN_PAIRS_PER_TASK} are recommended, otherwise its tune/eval splits are tiny and its "
                f"numbers noisy",
                row=acc.first.row,
                column="task",
            )
    if not records and not c.has_errors:
        c.error("the file has a header but no data rows")
    return list(tasks.items()), {t: d for t, (d, _) in descriptions.items()}


def _optional_suggestions(optional: str, columns: list[str]) -> list[str]:
    """Tag columns whose name is a known synonym of an absent optional column."""
    by_canon = {_canon(a): a for a in columns if a and a not in KNOWN_COLUMNS}
    return [by_canon[s] for s in _SYNONYMS.get(optional, ()) if s in by_canon]


# ---------------------------------------------------------------- public API


def read_pair_file(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    set_name: str | None = None,
) -> tuple[TaskSet | None, ValidationReport]:
    """Read and validate a pair file; never raises for bad content and never writes anything.

    ``source`` is a path, the file's bytes (e.g. from Streamlit's upload widget; then pass
    ``filename`` so the format is known) or a binary file object. Returns the TaskSet only
    when there are no errors (warnings are carried in ``TaskSet.warnings``), plus the report.
    ``max_bytes`` is checked before the file is read.
    """
    display, ext, data, c = _read_source(source, filename, max_bytes)
    n_rows, tasks, descriptions = 0, [], {}
    if data is not None:
        dec = _decode(data, c)
        if dec is not None:
            fmt = FORMATS[ext]
            parsed = _parse_jsonl(dec.text, c) if fmt == "jsonl" else _parse_delimited(dec.text, fmt, c)
            columns, records, n_rows = parsed if parsed is not None else ([], [], 0)
            if parsed is not None:
                result = _validate(columns, records, c, is_table=fmt != "jsonl")
                if result is not None:
                    tasks, descriptions = result
            if dec.bad_offset is not None:
                _encoding_error(dec, c, columns, records, is_table=fmt != "jsonl")
    task_counts = tuple((name, len(acc.pairs)) for name, acc in tasks)
    taskset = None
    if not c.has_errors:
        taskset = TaskSet(
            set_name or Path(display).stem,
            tuple(
                Task(
                    name=name,
                    pairs=tuple(MinimalPair(g, b) for g, b in acc.pairs),
                    category=_meta(acc, "category"),
                    field=_meta(acc, "field"),
                    description=descriptions.get(name, ""),
                    tags=tuple(
                        sorted((k, _meta(acc, k)) for k in acc.meta if k not in OPTIONAL_COLUMNS and _meta(acc, k))
                    ),
                    source=f"file:{display}",
                )
                for name, acc in tasks
            ),
            warnings=tuple(i.message for i in c.final("warning")),
        )
    report = ValidationReport(
        filename=display,
        errors=c.final("error"),
        warnings=c.final("warning"),
        n_rows=n_rows,
        n_pairs_kept=sum(n for _, n in task_counts),
        task_counts=task_counts,
    )
    return taskset, report


def _meta(acc: _TaskAcc, column: str) -> str:
    values = acc.meta.get(column)
    return next(iter(values)) if values else ""


def load_pair_file(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    set_name: str | None = None,
) -> TaskSet:
    """Like :func:`read_pair_file` but returns the TaskSet or raises :class:`PairFileError` listing the errors."""
    taskset, report = read_pair_file(source, filename, max_bytes, set_name)
    if taskset is None:
        lines = "\n".join(f"- {i.message}" for i in report.errors)
        raise PairFileError(
            f"{report.filename}: {len(report.errors)} problem(s), nothing was loaded"
            f"{_numbering_note(report.filename)}:\n{lines}",
            report,
        )
    return taskset


def write_pair_file(taskset: TaskSet, path: str | os.PathLike[str]) -> Path:
    """Write ``taskset`` in the upload format, so that reading it back gives an equal TaskSet.

    Columns: sentence_good, sentence_bad, task, category, field, description, then the tag
    columns sorted by name (a task without a tag gets an empty cell). The format follows
    the extension (.csv, .tsv/.tab, .jsonl/.ndjson). Sentences are written verbatim, with
    no spreadsheet-formula neutralisation: that would change the data on a round trip, and
    a pair file is data for this tool, not a report to open in a spreadsheet (use
    :func:`safe_csv_cell` for exports of derived data). Round trips are exact for text that
    is already normalised (as read) and for tags sorted by name with non-empty values;
    ``TaskSet.name`` and ``Task.source`` are not stored and come from the file name on reading.
    """
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise TaskError(f"cannot write '{p.name}': unknown file type; use one of {_ACCEPTED}")
    tag_cols = sorted({k for t in taskset for k, _ in t.tags})
    clash = [k for k in tag_cols if not k.strip() or _canon(k) in KNOWN_COLUMNS]
    if clash:
        raise TaskError(f"cannot write '{p.name}': tag name(s) {clash} are empty or clash with a standard column")
    columns = list(KNOWN_COLUMNS) + tag_cols
    rows = []
    for t in taskset:
        tags = t.tag_dict
        for pair in t.pairs:
            rows.append(
                [pair.good, pair.bad, t.name, t.category, t.field, t.description] + [tags.get(k, "") for k in tag_cols]
            )
    if fmt == "jsonl":
        text = "".join(json.dumps(dict(zip(columns, r, strict=True)), ensure_ascii=False) + "\n" for r in rows)
        p.write_text(text, encoding="utf-8", newline="")
    else:
        with p.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, delimiter=fmt, lineterminator="\n")
            w.writerow(columns)
            w.writerows(rows)
    return p


def safe_csv_cell(value: str) -> str:
    """Neutralise CSV/formula injection in a text cell of an exported *derived data* file.

    Spreadsheets run cells that start with ``=``, ``+``, ``-``, ``@`` (or tab / carriage
    return) as formulas; a leading single quote makes them plain text. Plain numbers such
    as ``-0.53`` are left alone so numeric exports stay numeric.
    """
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
