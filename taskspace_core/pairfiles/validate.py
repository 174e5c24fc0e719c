"""From a header and records to tasks: column names, cells, pairs, and per-task agreement checks."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from taskspace_core.pairfiles.report import _col_letter, _Collector, _Record, _short
from taskspace_core.pairfiles.schema import (
    _INVISIBLE,
    _SURROGATE,
    _SYNONYMS,
    KNOWN_COLUMNS,
    MAX_SENTENCE_CHARS,
    MIN_PAIRS_PER_TASK,
    REQUIRED_COLUMNS,
    _canon,
    _invisible_name,
)

_HEADER = "row 1 (the header)"


@dataclass
class _TaskAcc:
    """Accumulates one task's rows while reading."""

    first: _Record
    pairs: dict[tuple[str, str], _Record] = field(default_factory=dict)  # pair -> the row it came from
    meta: dict[str, dict[str, _Record]] = field(default_factory=dict)  # column -> value -> first row with it


@dataclass(frozen=True)
class _Options:
    strip_invisible: bool = False
    max_sentence_chars: int = MAX_SENTENCE_CHARS


def _suggest(missing: str, available: Sequence[str]) -> list[str]:
    """Header names that may be meant as ``missing``: known synonyms first, then close spellings."""
    by_canon = {_canon(a): a for a in available if a.strip()}
    found = [by_canon[s] for s in _SYNONYMS.get(missing, ()) if s in by_canon]
    for m in difflib.get_close_matches(missing, list(by_canon), n=3, cutoff=0.6):
        if by_canon[m] not in found:
            found.append(by_canon[m])
    return found


def _optional_suggestions(optional: str, columns: list[str]) -> list[str]:
    """Tag columns whose name is a known synonym of an absent optional column."""
    by_canon = {_canon(a): a for a in columns if a and a not in KNOWN_COLUMNS}
    return [by_canon[s] for s in _SYNONYMS.get(optional, ()) if s in by_canon]


def _validate(
    raw_columns: list[str], records: list[_Record], c: _Collector, is_table: bool, opts: _Options = _Options()
) -> tuple[list[tuple[str, _TaskAcc]], dict[str, str]] | None:
    """Check columns and rows; return the tasks (file order) and their descriptions."""
    checked = _check_columns(raw_columns, records, c, is_table)
    if checked is None:
        return None
    columns, seen = checked
    rows = _RowReader(columns, seen, c, is_table, opts)
    for r in records:
        rows.read(r)
    rows.report_tidying()
    _check_tasks(rows.tasks, c)
    if not records and not c.has_errors:
        c.error("the file has a header but no data rows")
    return list(rows.tasks.items()), {t: d for t, (d, _) in rows.descriptions.items()}


# ---------------------------------------------------------------- columns


def _check_columns(
    raw_columns: list[str], records: list[_Record], c: _Collector, is_table: bool
) -> tuple[list[str], dict[str, int]] | None:
    """Canonical column names and their first index; None when a required column is missing."""
    columns, seen = _name_columns(raw_columns, c, is_table)
    _check_unnamed(columns, records, c, is_table)
    if any(m not in seen for m in REQUIRED_COLUMNS):
        _report_missing(columns, seen, c, is_table)
        return None
    for m in ("category", "field", "description"):
        if m not in seen:
            sugg = _optional_suggestions(m, columns)
            if sugg:
                c.warning(
                    f"column {sugg[0]!r} is read as a free tag; if it is the task's {m}, rename it to '{m}'",
                    where=_HEADER if is_table else None,
                    row=1 if is_table else None,
                    column=sugg[0],
                )
    return columns, seen


def _name_columns(raw_columns: list[str], c: _Collector, is_table: bool) -> tuple[list[str], dict[str, int]]:
    header_where = _HEADER if is_table else None
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
    return columns, seen


def _check_unnamed(columns: list[str], records: list[_Record], c: _Collector, is_table: bool) -> None:
    for i, name in enumerate(columns):
        if not name:
            used = next((r for r in records if r.values[i] and r.values[i].strip()), None)  # type: ignore[union-attr]
            if used is not None:
                c.error(
                    f"column {_col_letter(i)} has no name in the header but holds values (e.g. "
                    f"{used.where}: {_short(used.values[i] or '')}); give it a name (it becomes a tag column) "
                    f"or delete the column",
                    where=_HEADER if is_table else None,
                    row=1 if is_table else None,
                    column=_col_letter(i),
                )


def _report_missing(columns: list[str], seen: dict[str, int], c: _Collector, is_table: bool) -> None:
    header_where = _HEADER if is_table else None
    missing = [m for m in REQUIRED_COLUMNS if m not in seen]
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
        return
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


# ---------------------------------------------------------------- rows


class _RowReader:
    """Reads rows into tasks, counting the cells it tidied so that one warning can sum them up."""

    def __init__(self, columns: list[str], seen: dict[str, int], c: _Collector, is_table: bool, opts: _Options) -> None:
        self.c, self.is_table, self.opts, self.idx = c, is_table, opts, dict(seen)
        self.named = [(i, name) for i, name in enumerate(columns) if name]
        self.meta_cols = [n for n in columns if n and n not in ("sentence_good", "sentence_bad", "task", "description")]
        self.has_desc = "description" in seen
        self.tasks: dict[str, _TaskAcc] = {}
        self.descriptions: dict[str, tuple[str, _Record]] = {}  # task -> (value, first row with it)
        self.ws_cells, self.ws_first, self.ws_row, self.ws_col = 0, "", 0, ""  # count, and where the first was
        self.nfc_cells = 0

    def read(self, r: _Record) -> None:
        if not self.is_table and not any(v and v.strip() for v in r.values):
            return  # CSV blank rows were dropped while parsing
        vals = self._cells(r)
        good, bad, task = vals["sentence_good"], vals["sentence_bad"], vals["task"]
        limit = self.opts.max_sentence_chars
        if not (good and bad and task) or good == bad or len(good) > limit or len(bad) > limit:
            self._row_errors(r, vals)  # the rare path: say what is wrong with the row
            return
        acc = self.tasks.get(task)
        if acc is None:
            acc = self.tasks[task] = _TaskAcc(r)
        for name in self.meta_cols:  # before the duplicate check: a repeated row must agree too
            acc.meta.setdefault(name, {}).setdefault(vals[name], r)
        if self.has_desc and vals["description"]:
            self._description(r, task, vals["description"])
        if (good, bad) in acc.pairs:
            self.c.warning(
                f"duplicate pair: the same sentence_good and sentence_bad already appear in "
                f"{acc.pairs[(good, bad)].where} for task '{task}'; one copy was kept",
                where=r.where,
                row=r.row,
                column="sentence_good",
            )
            return
        acc.pairs[(good, bad)] = r

    def _cells(self, r: _Record) -> dict[str, str]:
        """Every named cell, NFC-normalised with whitespace tidied (and invisible characters handled)."""
        vals: dict[str, str] = {}
        invisible: list[tuple[str, str]] | None = None  # (column, character), built only when one is found
        values = r.values
        for i, name in self.named:
            raw = values[i]
            if raw is None:
                vals[name] = ""
                continue
            if raw.isascii():  # the common case: nothing to normalise or to look for
                nfc = raw
            else:
                hit = _INVISIBLE.search(raw)
                if hit:
                    invisible = (invisible or []) + [(name, hit.group())]
                    if self.opts.strip_invisible:
                        raw = _INVISIBLE.sub("", raw)
                nfc = unicodedata.normalize("NFC", raw)
                if nfc != raw:
                    self.nfc_cells += 1
            norm = " ".join(nfc.split())  # = trim + collapse every whitespace run, faster than a regex
            if norm != nfc:
                self.ws_cells += 1
                if not self.ws_first:
                    self.ws_first, self.ws_row, self.ws_col = r.where, r.row, name
            vals[name] = norm
        if invisible:
            self._invisible(r, invisible)
        return vals

    def _invisible(self, r: _Record, found: list[tuple[str, str]]) -> None:
        names = ", ".join(dict.fromkeys(_invisible_name(ch) for _, ch in found))
        cols = ", ".join(dict.fromkeys(col for col, _ in found))
        done = (
            "they were removed"
            if self.opts.strip_invisible
            else "they were kept; remove them from the file, or let them be stripped on reading "
            "(the 'Remove invisible characters' option; strip_invisible=True)"
        )
        self.c.warning(
            f"invisible character(s) in column(s) {cols}: {names}. They make two sentences that look the same "
            f"differ (e.g. 'The cat.' and 'The\\u200b cat.'); {done}",
            where=r.where,
            row=r.row,
            column=found[0][0],
        )

    def _row_errors(self, r: _Record, vals: dict[str, str]) -> None:
        """Report empty required cells, over-long sentences and good == bad."""
        bad_row = False
        for m in REQUIRED_COLUMNS:
            if not vals[m]:
                absent = r.values[self.idx[m]] is None
                what = f"the key '{m}' is missing from this line" if absent else "the cell is empty"
                self.c.error(what, where=r.where, row=r.row, column=m)
                bad_row = True
        limit = self.opts.max_sentence_chars
        for m in ("sentence_good", "sentence_bad"):
            if len(vals[m]) > limit:
                self.c.error(
                    f"the sentence is {len(vals[m]):,} characters long, above the limit of {limit:,} "
                    f"(MAX_SENTENCE_CHARS): such a cell is usually several rows swallowed by an unclosed "
                    f'double quote ("); check the row, or if the sentence is real, raise the limit '
                    f"(max_sentence_chars)",
                    where=r.where,
                    row=r.row,
                    column=m,
                )
                bad_row = True
        if bad_row:
            return
        if vals["sentence_good"] == vals["sentence_bad"]:
            self.c.error(
                f"sentence_good and sentence_bad are the same sentence {_short(vals['sentence_good'])} (after "
                f"normalising spaces); a minimal pair needs two different sentences",
                where=r.where,
                row=r.row,
                column="sentence_bad",
            )

    def _description(self, r: _Record, task: str, value: str) -> None:
        prev = self.descriptions.get(task)
        if prev is None:
            self.descriptions[task] = (value, r)
        elif prev[0] != value:
            self.c.warning(
                f"task '{task}' has a different description here than in {prev[1].where}; the first one is used",
                where=r.where,
                row=r.row,
                column="description",
            )

    def report_tidying(self) -> None:
        if self.ws_cells:
            self.c.warning(
                f"stray whitespace (spaces at the start or end, repeated spaces, tabs or line breaks inside a "
                f"cell) was tidied in {self.ws_cells} cell(s); this is the first of them",
                where=self.ws_first,
                row=self.ws_row,
                column=self.ws_col,
            )
        if self.nfc_cells:
            self.c.warning(
                f"{self.nfc_cells} cell(s) had accents stored as separate combining characters; they were converted "
                f"to the standard composed form (Unicode NFC) so that identical-looking sentences compare equal"
            )


# ---------------------------------------------------------------- tasks


def _check_tasks(tasks: dict[str, _TaskAcc], c: _Collector) -> None:
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


def _meta(acc: _TaskAcc, column: str) -> str:
    values = acc.meta.get(column)
    return next(iter(values)) if values else ""
