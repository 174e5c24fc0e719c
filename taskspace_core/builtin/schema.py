"""Paradigm schema: the fields and change kinds a paradigm may declare, its compiled form, and its errors.

The format is documented in ``FORMAT.md`` next to this file. Every error in a paradigm is a
:class:`ParadigmError` naming the paradigm, the field and, where known, the line, so that a
linguist editing YAML can find it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskspace_core.tasks import TaskError

FIELDS = ("syntax", "morphology", "semantics", "syntax_semantics")
CHANGES = ("substitute", "replace", "reorder", "reorder_substitute", "insert", "delete")
REQUIRED = ("name", "category", "field", "description", "change", "slots", "good", "bad")
OPTIONAL = ("mirrors", "example", "vars", "distinct", "tags")

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)*|[^\sA-Za-z0-9]")
_AN_EXCEPTIONS = ("uni", "use", "usu", "eu", "one", "once")


class ParadigmError(TaskError):
    """An error in a paradigm definition, located by paradigm name, field and line."""

    def __init__(self, paradigm: str, field: str, message: str, line: int | None = None) -> None:
        self.paradigm = paradigm
        self.field = field
        self.line = line
        where = f"field '{field}'" + (f" (line {line})" if line is not None else "")
        super().__init__(f"paradigm '{paradigm}', {where}: {message}")


# ------------------------------------------------------------------ tokens & change kinds


def tokens(sentence: str) -> list[str]:
    """Lower-cased word and punctuation tokens (contractions like "can't" stay one token)."""
    return [t.lower() for t in _TOKEN_RE.findall(sentence)]


def check_change(good: str, bad: str, kind: str) -> bool:
    """Whether ``bad`` differs from ``good`` in the way ``kind`` declares (token diff)."""
    g, b = tokens(good), tokens(bad)
    if g == b:
        return False
    pre = 0
    while pre < min(len(g), len(b)) and g[pre] == b[pre]:
        pre += 1
    suf = 0
    while suf < min(len(g), len(b)) - pre and g[-1 - suf] == b[-1 - suf]:
        suf += 1
    gm, bm = g[pre : len(g) - suf], b[pre : len(b) - suf]
    if kind == "substitute":
        return len(gm) == 1 and len(bm) == 1
    if kind == "replace":
        return bool(gm) and bool(bm)
    if kind == "insert":
        return not gm and bool(bm)
    if kind == "delete":
        return bool(gm) and not bm
    if kind == "reorder":
        return Counter(g) == Counter(b)
    if kind == "reorder_substitute":
        cg, cb = Counter(g), Counter(b)
        # exactly one token traded for another, and more than a one-token swap in place
        return len(g) == len(b) and sum((cg - cb).values()) == 1 and sum((cb - cg).values()) == 1 and len(gm) > 1
    raise ValueError(f"unknown change kind '{kind}'")


@dataclass(frozen=True)
class Ref:
    """A constraint value read at sampling time: ``$var``, ``$~var`` or ``$slot.feature``."""

    target: str
    feature: str | None
    flip: bool


@dataclass(frozen=True)
class Constraint:
    feature: str
    values: tuple[Any, ...] | Ref
    negate: bool


@dataclass(frozen=True)
class Slot:
    name: str
    pos: str | None  # None: a literal choice list
    choices: tuple[int, ...] | tuple[str, ...]  # candidate entry indices, or literal words
    dynamic: tuple[Constraint, ...]
    deps: tuple[str, ...]


@dataclass(frozen=True)
class Piece:
    text: str | None  # literal text, or None for a placeholder
    slot: str = ""
    form: str = ""  # may contain $var / $~var


@dataclass(frozen=True)
class Paradigm:
    name: str
    category: str
    field: str
    description: str
    change: str
    mirrors: str
    example: tuple[str, str] | None
    vars: Mapping[str, tuple[str, ...]]
    slots: tuple[Slot, ...]  # in sampling order
    good: tuple[Piece, ...]
    bad: tuple[Piece, ...]
    distinct: bool
    tags: tuple[tuple[str, str], ...]
    lines: Mapping[tuple[Any, ...], int]
    base: tuple[Any, ...] = ()  # where this paradigm sits in its file's line map


class _Ctx:
    """Error helper bound to one paradigm's name and line map."""

    def __init__(self, name: str, lines: Mapping[tuple[Any, ...], int], base: tuple[Any, ...]) -> None:
        self.name, self.lines, self.base = name, lines, base

    def err(self, field: str, message: str) -> ParadigmError:
        path = tuple(int(p) if p.isdigit() else p for p in field.split(".")) if field else ()
        # the deepest part of the path that the YAML actually has
        line = self.lines.get(self.base + path)
        while line is None and path:
            path = path[:-1]
            line = self.lines.get(self.base + path)
        return ParadigmError(self.name, field or "(top)", message, line)
