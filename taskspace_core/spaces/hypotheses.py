"""Hypothesis spaces (METHODS s6): from a tag column's labels, or an uploaded N x N matrix, validated."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from taskspace_core.spaces.matrices import _SYM_ATOL, SpaceError, _upper


def _is_missing_label(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or (isinstance(x, str) and not x.strip())


@dataclass(frozen=True, eq=False)
class HypothesisSpace:
    """A hypothesis about which tasks are alike: an N x N matrix over named tasks.

    ``matrix`` is read-only; higher = more alike. Built from labels it is 1 for same label,
    0 otherwise (diagonal 1). ``labels`` is set when the space is a partition (built from
    labels, or an uploaded 0/1 matrix whose 1s form groups); clustering agreement needs it.
    """

    name: str
    task_names: tuple[str, ...]
    matrix: np.ndarray = field(repr=False)
    labels: tuple[str, ...] | None = None

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)

    @property
    def is_binary(self) -> bool:
        """True when every off-diagonal entry is 0 or 1 (a same/different hypothesis)."""
        return bool(np.isin(_upper(self.matrix), (0.0, 1.0)).all())

    @classmethod
    def from_labels(
        cls, name: str, task_names: Sequence[str], labels: Sequence[object] | Mapping[str, object]
    ) -> HypothesisSpace:
        """``H[i, j] = 1`` iff tasks i and j share the label of level ``name`` (e.g. 'category')."""
        names = _check_task_names(task_names)
        if isinstance(labels, Mapping):
            absent = [t for t in names if t not in labels]
            if absent:
                raise SpaceError(f"No '{name}' label for tasks: {', '.join(absent)}.")
            labs = [labels[t] for t in names]
        else:
            labs = list(labels)
            if len(labs) != len(names):
                raise SpaceError(f"Got {len(labs)} '{name}' labels for {len(names)} tasks.")
        missing = [t for t, lab in zip(names, labs, strict=True) if _is_missing_label(lab)]
        if missing:
            raise SpaceError(
                f"These tasks have no '{name}' label: {', '.join(missing)}. Give them one or leave them out."
            )
        str_labels = tuple(str(lab) for lab in labs)
        arr = np.array(str_labels, dtype=object)
        H = (arr[:, None] == arr[None, :]).astype(float)
        H.setflags(write=False)
        return cls(name=name, task_names=names, matrix=H, labels=str_labels)

    @classmethod
    def from_matrix(
        cls,
        data: pd.DataFrame | str | Path | io.IOBase,
        task_names: Sequence[str],
        name: str = "uploaded",
    ) -> tuple[HypothesisSpace, list[str]]:
        """Validate an uploaded N x N hypothesis matrix; return the space and warnings.

        ``data`` is a DataFrame (index = row names, columns = column names) or a CSV path or
        file object whose first column holds the row names. Rows and columns must both name
        exactly the given tasks (any order; reordered to ``task_names``). Values must be
        numbers; higher = more alike. An asymmetric matrix is replaced by (H + H^T)/2 with a
        warning. The diagonal is ignored (stored as NaN).
        """
        names = _check_task_names(task_names)
        warn: list[str] = []
        if isinstance(data, pd.DataFrame):
            df = data.copy()
        else:
            try:
                df = pd.read_csv(data, index_col=0)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
                raise SpaceError(f"Could not read the hypothesis matrix as CSV: {exc}") from None
        if df.shape[0] == 0 or df.shape[1] == 0:
            raise SpaceError("The hypothesis matrix is empty.")
        if df.shape[0] != df.shape[1]:
            raise SpaceError(
                f"The hypothesis matrix has {df.shape[0]} rows and {df.shape[1]} columns; it must be square "
                "(one row and one column per task, with task names in the first row and first column)."
            )
        rows = [str(r) for r in df.index]
        cols = [str(c) for c in df.columns]
        for where, lst in (("row", rows), ("column", cols)):
            dup = sorted({x for x in lst if lst.count(x) > 1})
            if dup:
                raise SpaceError(f"These {where} names appear more than once: {', '.join(dup)}.")
        if set(rows) == set(cols):  # one message when rows and columns share the same problem
            problems = [_name_mismatch(rows, names, "rows and columns")]
        else:
            problems = [_name_mismatch(rows, names, "rows"), _name_mismatch(cols, names, "columns")]
        if any(problems):
            raise SpaceError(" ".join(p for p in problems if p))
        df.index, df.columns = rows, cols
        df = df.loc[list(names), list(names)]
        values = np.array(df.apply(pd.to_numeric, errors="coerce"), dtype=float)  # own writable copy
        bad = [
            (names[i], names[j], df.iat[i, j]) for i, j in zip(*np.nonzero(~np.isfinite(values)), strict=True) if i != j
        ]
        if bad:
            shown = "; ".join(f"row '{r}', column '{c}': {v!r}" for r, c, v in bad[:5])
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            raise SpaceError(f"The hypothesis matrix must hold numbers only. Not a number: {shown}{more}.")
        np.fill_diagonal(values, np.nan)
        diff = np.abs(values - values.T)
        if np.nanmax(diff, initial=0.0) > _SYM_ATOL:
            i, j = np.unravel_index(np.nanargmax(diff), diff.shape)
            warn.append(
                f"The hypothesis matrix was not symmetric (largest difference {diff[i, j]:.3g}, between "
                f"'{names[i]}' and '{names[j]}'); it was replaced by the average of both directions."
            )
            values = (values + values.T) / 2.0
        off = values[~np.eye(len(names), dtype=bool)]
        if off.size and np.ptp(off) == 0:
            warn.append("Every pair has the same hypothesis value; no statistic can be computed against it.")
        labels = _labels_from_binary(values, names)
        values.setflags(write=False)
        return cls(name=name, task_names=names, matrix=values, labels=labels), warn


def _check_task_names(task_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(str(t) for t in task_names)
    if len(names) < 2:
        raise SpaceError("A hypothesis space needs at least two tasks.")
    dup = sorted({t for t in names if names.count(t) > 1})
    if dup:
        raise SpaceError(f"Task names must be unique; repeated: {', '.join(dup)}.")
    return names


def _name_mismatch(given: Sequence[str], expected: Sequence[str], where: str) -> str:
    """Explain which names are missing/extra; hint at near-matches (case, spaces)."""
    given_set, expected_set = set(given), set(expected)
    missing = [t for t in expected if t not in given_set]
    extra = [t for t in given if t not in expected_set]
    if not missing and not extra:
        return ""
    parts = []
    if missing:
        parts.append(f"missing tasks: {', '.join(missing)}")
    if extra:
        parts.append(f"names that are not tasks: {', '.join(extra)}")
    norm = {t.strip().casefold(): t for t in missing}
    hints = [f"'{e}' -> '{norm[e.strip().casefold()]}'" for e in extra if e.strip().casefold() in norm]
    hint = f" (did you mean {', '.join(hints)}? names must match exactly)" if hints else ""
    return f"The matrix {where} do not match the tasks: {'; '.join(parts)}{hint}."


def _labels_from_binary(H: np.ndarray, names: Sequence[str]) -> tuple[str, ...] | None:
    """Group labels if the 0/1 matrix is a partition (its 1s form complete groups), else None."""
    n = len(names)
    off = ~np.eye(n, dtype=bool)
    if not np.isin(H[off], (0.0, 1.0)).all():
        return None
    same = (H == 1.0) | ~off
    labels = np.full(n, -1)
    for i in range(n):
        if labels[i] < 0:
            labels[same[i]] = i
    # a partition: every row equals the indicator of its own group
    if not np.array_equal(same, labels[:, None] == labels[None, :]):
        return None
    return tuple(f"group of {names[g]}" for g in labels)
