"""Writing a task set in the upload format, and neutralising spreadsheet formulas in exported CSV."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from taskspace_core.pairfiles.schema import _ACCEPTED, FORMATS, KNOWN_COLUMNS, _canon
from taskspace_core.tasks import TaskError, TaskSet

if TYPE_CHECKING:
    import pandas as pd

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


def safe_csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with :func:`safe_csv_cell` applied to every text cell, header and index label.

    The one way the project writes CSV of derived data (app downloads and ``precompute export``).
    """
    import pandas as pd  # here, not at the top: reading pair files needs no pandas

    out = df.copy()

    def safe(v: object) -> object:
        return safe_csv_cell(v) if isinstance(v, str) else v

    for c in out.columns:
        # pandas >= 3 stores text as 'str', older versions as object: test for "not numeric"
        if not pd.api.types.is_numeric_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c].map(safe)
    out.columns = [safe_csv_cell(str(c)) for c in out.columns]
    if not pd.api.types.is_numeric_dtype(out.index):
        out.index = [safe(i) for i in out.index]
    return out
