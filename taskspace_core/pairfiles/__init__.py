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

The rooms: ``schema`` (columns, formats, limits), ``report`` (issues and where they are),
``decode`` (bytes to text), ``parse`` (text to records), ``validate`` (records to tasks),
``write`` (the upload format and formula-safe CSV cells).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from taskspace_core.pairfiles.decode import _decode, _encoding_error, _read_source
from taskspace_core.pairfiles.parse import _parse_delimited, _parse_jsonl
from taskspace_core.pairfiles.report import Issue, PairFileError, ValidationReport, _numbering_note
from taskspace_core.pairfiles.schema import (
    DEFAULT_MAX_BYTES,
    FORMATS,
    KNOWN_COLUMNS,
    MAX_ISSUES,
    MAX_SENTENCE_CHARS,
    MIN_PAIRS_PER_TASK,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
)
from taskspace_core.pairfiles.validate import _meta, _Options, _TaskAcc, _validate
from taskspace_core.pairfiles.write import safe_csv_cell, safe_csv_frame, write_pair_file
from taskspace_core.tasks import MinimalPair, Task, TaskSet

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "KNOWN_COLUMNS",
    "MAX_ISSUES",
    "MAX_SENTENCE_CHARS",
    "MIN_PAIRS_PER_TASK",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "Issue",
    "PairFileError",
    "ValidationReport",
    "load_pair_file",
    "read_pair_file",
    "safe_csv_cell",
    "safe_csv_frame",
    "write_pair_file",
]

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


def read_pair_file(
    source: Source,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    set_name: str | None = None,
    *,
    strip_invisible: bool = False,
    max_sentence_chars: int = MAX_SENTENCE_CHARS,
) -> tuple[TaskSet | None, ValidationReport]:
    """Read and validate a pair file; never raises for bad content and never writes anything.

    ``source`` is a path, the file's bytes (e.g. from Streamlit's upload widget; then pass
    ``filename`` so the format is known) or a binary file object. Returns the TaskSet only
    when there are no errors (warnings are carried in ``TaskSet.warnings``), plus the report.
    ``max_bytes`` is checked before the file is read. Invisible characters (bidi controls,
    zero-width characters) are reported as warnings and removed when ``strip_invisible``;
    a sentence longer than ``max_sentence_chars`` is an error.
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
                opts = _Options(strip_invisible, max_sentence_chars)
                result = _validate(columns, records, c, is_table=fmt != "jsonl", opts=opts)
                if result is not None:
                    tasks, descriptions = result
            if dec.bad_offset is not None:
                _encoding_error(dec, c, columns, records, is_table=fmt != "jsonl")
    task_counts = tuple((name, len(acc.pairs)) for name, acc in tasks)
    taskset = None
    if not c.has_errors:
        warnings = tuple(i.message for i in c.final("warning"))
        built = tuple(_task(name, acc, descriptions, display) for name, acc in tasks)
        taskset = TaskSet(set_name or Path(display).stem, built, warnings=warnings)
    report = ValidationReport(
        filename=display,
        errors=c.final("error"),
        warnings=c.final("warning"),
        n_rows=n_rows,
        n_pairs_kept=sum(n for _, n in task_counts),
        task_counts=task_counts,
    )
    return taskset, report


def _task(name: str, acc: _TaskAcc, descriptions: dict[str, str], display: str) -> Task:
    return Task(
        name=name,
        pairs=tuple(MinimalPair(g, b) for g, b in acc.pairs),
        category=_meta(acc, "category"),
        field=_meta(acc, "field"),
        description=descriptions.get(name, ""),
        tags=tuple(sorted((k, _meta(acc, k)) for k in acc.meta if k not in OPTIONAL_COLUMNS and _meta(acc, k))),
        source=f"file:{display}",
    )


def load_pair_file(
    source: Source,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    set_name: str | None = None,
    *,
    strip_invisible: bool = False,
    max_sentence_chars: int = MAX_SENTENCE_CHARS,
) -> TaskSet:
    """Like :func:`read_pair_file` but returns the TaskSet or raises :class:`PairFileError` listing the errors."""
    taskset, report = read_pair_file(
        source, filename, max_bytes, set_name, strip_invisible=strip_invisible, max_sentence_chars=max_sentence_chars
    )
    if taskset is None:
        lines = "\n".join(f"- {i.message}" for i in report.errors)
        raise PairFileError(
            f"{report.filename}: {len(report.errors)} problem(s), nothing was loaded"
            f"{_numbering_note(report.filename)}:\n{lines}",
            report,
        )
    return taskset
