"""What reading a pair file reports: issues, the report, the error, and where a row sits in the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from taskspace_core.pairfiles.schema import _SURROGATE, MAX_ISSUES
from taskspace_core.tasks import TaskError


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
