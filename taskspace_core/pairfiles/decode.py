"""From a path, bytes or file object to text: size limit, file type, byte-order marks, NUL bytes, encodings."""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from taskspace_core.pairfiles.report import _as_cp1252, _col_letter, _Collector, _fmt_mb, _Record, _short
from taskspace_core.pairfiles.schema import _ACCEPTED, _SURROGATE, FORMATS


@dataclass
class _Decoded:
    text: str
    bad_offset: int | None = None  # first byte that is not UTF-8
    bad_byte: int = 0
    bad_line: int | None = None
    bad_lines: int = 0
    guess: str = ""


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
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _looks_utf16(data):
        c.error(
            "the file is saved as UTF-16 (Excel calls it 'Unicode Text'; it has NUL bytes); save the file as UTF-8 "
            "(Excel: Save As > 'CSV UTF-8 (Comma delimited)')",
            where="line 1",
        )
        return None
    nul = data.find(b"\x00")
    if nul >= 0:  # anywhere in the file, not only at its start: a NUL is never part of a sentence
        line, count = data.count(b"\n", 0, nul) + 1, data.count(b"\x00")
        c.error(
            f"the file contains {count:,} NUL byte(s) (a zero byte, 0x00), the first at byte offset "
            f"{nul} (line {line}); NUL bytes are not text: the file may be damaged or partly binary. Remove them "
            "(e.g. open the file in a text editor and save it again as UTF-8) and load the file again",
            where=f"line {line}",
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


def _looks_utf16(data: bytes) -> bool:
    """UTF-16 without a byte-order mark: ASCII text then has a NUL in every other byte."""
    head = data[:4096]
    return len(head) >= 2 and max(head[0::2].count(0), head[1::2].count(0)) * 4 >= len(head)


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
