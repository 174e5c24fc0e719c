"""From text to a header and records: CSV/TSV with exact row and line numbers, JSONL one object per line."""

from __future__ import annotations

import csv
import io
import json

from taskspace_core.pairfiles.report import _col_letter, _Collector, _Record, _short, _where


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
            fitted = _fit_row(cells, header, where, row, start != end, sep, c)
            if fitted is None:
                continue
            extra_empty += len(fitted) < len(cells)
            cells = fitted
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


def _fit_row(
    cells: list[str], header: list[str], where: str, row: int, multiline: bool, sep: str, c: _Collector
) -> list[str] | None:
    """A row with another number of cells than the header: trimmed of empty extra cells, or reported (None)."""
    n = len(header)
    if len(cells) > n:
        extra = cells[n:]
        if not any(x.strip() for x in extra):
            return cells[:n]
        first = n + next(i for i, x in enumerate(extra) if x.strip())
        quote_hint = '; a double quote (") opened here seems never to be closed' if multiline else ""
        c.error(
            f"the row has {len(cells)} cells but the header has {n} columns: there is an extra value "
            f"{_short(cells[first])} in column {_col_letter(first)}, after the last column "
            f"'{header[-1]}'. A cell probably contains a {sep} -- put such cells in double quotes "
            f"(spreadsheet programs do this when they save){quote_hint}",
            where=where,
            row=row,
            column=_col_letter(first),
        )
        return None
    missing = header[len(cells) :]
    quote_hint = (
        '; the row runs over several lines, so a double quote (") opened in it is probably never closed'
        if multiline
        else ""
    )
    c.error(
        f"the row has {len(cells)} cells but the header has {n} columns, so column(s) "
        f"{', '.join(repr(m) for m in missing)} have no cell; check for a missing {sep}{quote_hint}",
        where=where,
        row=row,
        column=missing[0] or _col_letter(len(cells)),
    )
    return None


_EXAMPLE = '{"sentence_good": "...", "sentence_bad": "...", "task": "..."}'


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


_FAILED = object()


def _load_line(line: str, lineno: int, first: bool, c: _Collector) -> object:
    """One JSONL line as a value, or ``_FAILED`` after reporting why it cannot be read (never raises)."""
    where = f"line {lineno}"
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        hint = ""
        if first and not line.lstrip().startswith("{") and ("," in line or "\t" in line):
            hint = "; this looks like a CSV/TSV header: give the file a .csv or .tsv extension"
        c.error(
            f"not valid JSON ({e.msg} at character {e.colno}); each line must be one JSON object such as "
            f"{_EXAMPLE}{hint}",
            where=where,
            row=lineno,
        )
        return _FAILED
    except RecursionError:
        c.error(
            f"the line nests lists or objects too deeply to read; each line must be one flat JSON object "
            f"such as {_EXAMPLE}",
            where=where,
            row=lineno,
        )
        return _FAILED
    except Exception as e:  # noqa: BLE001 - whatever the line holds, report it, never raise
        what = (
            "a number on the line has more digits than can be read; put it in double quotes to make it text"
            if isinstance(e, ValueError) and "digits" in str(e)
            else f"the line could not be read as JSON ({_short(str(e), 120)})"
        )
        c.error(f"{what}; each line must be one JSON object such as {_EXAMPLE}", where=where, row=lineno)
        return _FAILED


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
        obj = _load_line(line, lineno, not objs, c)
        if obj is _FAILED:
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
            elif "\x00" in v:
                c.error(
                    "the value contains a NUL character (\\u0000), which is not text; remove it",
                    where=f"line {lineno}",
                    row=lineno,
                    column=k,
                )
                ok = False
            values.append(v)
        if ok:
            records.append(_Record(lineno, values))
    return cols, records, n_data
