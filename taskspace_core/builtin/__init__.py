"""taskspace's own minimal-pair suite: a template grammar over a small lexicon.

Works with no network and no BLiMP files, so the app always has a task space to
open. Paradigms live in ``paradigms/*.yaml``, the lexicon in ``lexicon/*.yaml``;
the format is described in ``FORMAT.md``. The rooms: ``schema`` (fields, change
kinds, compiled form, errors), ``lexicon``, ``yaml_text`` (safe YAML reading), ``parse``
(paradigm checks and compilation) and ``generate`` (sampling pairs).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from taskspace_core.builtin.generate import finish, generate, to_task
from taskspace_core.builtin.lexicon import Lexicon, load_lexicon
from taskspace_core.builtin.parse import parse_file, parse_paradigm, parse_text
from taskspace_core.builtin.schema import CHANGES, Paradigm, ParadigmError, check_change, tokens
from taskspace_core.builtin.yaml_text import MAX_PARADIGM_BYTES, MAX_YAML_DEPTH, PARSE_TIME_LIMIT_S
from taskspace_core.tasks import Task, TaskError, TaskSet

__all__ = [
    "CHANGES",
    "MAX_PARADIGM_BYTES",
    "MAX_YAML_DEPTH",
    "PARSE_TIME_LIMIT_S",
    "Lexicon",
    "Paradigm",
    "ParadigmError",
    "check_change",
    "finish",
    "generate",
    "lexicon",
    "load_builtin",
    "load_paradigm_text",
    "paradigm_names",
    "paradigms",
    "parse_file",
    "parse_paradigm",
    "parse_text",
    "to_task",
    "tokens",
]

PARADIGM_DIR = Path(__file__).parent / "paradigms"


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    return load_lexicon()


@lru_cache(maxsize=1)
def paradigms() -> dict[str, Paradigm]:
    """All built-in paradigms by name, in file order (files sorted by category)."""
    out: dict[str, Paradigm] = {}
    for f in sorted(PARADIGM_DIR.glob("*.yaml")):
        for p in parse_file(f, lexicon()):
            if p.name in out:
                raise TaskError(f"{f.name}: two built-in paradigms are named '{p.name}'")
            out[p.name] = p
    return out


def paradigm_names() -> list[str]:
    """Names of the built-in paradigms."""
    return list(paradigms())


@lru_cache(maxsize=512)
def _task(name: str, n_pairs: int, seed: int) -> Task:
    p = paradigms()[name]
    return to_task(p, generate(p, lexicon(), n_pairs, seed))


def load_builtin(names: list[str] | None = None, n_pairs: int = 1000, seed: int = 0) -> TaskSet:
    """The built-in suite (or the named paradigms of it) as a task set named ``builtin``."""
    available = paradigms()
    wanted = list(available) if names is None else list(names)
    missing = [n for n in wanted if n not in available]
    if missing:
        raise TaskError(f"no built-in paradigm(s) {', '.join(missing)}; available: {', '.join(available)}")
    return TaskSet("builtin", tuple(_task(n, n_pairs, seed) for n in wanted))


def load_paradigm_text(text: str, n_pairs: int, seed: int = 0) -> Task:
    """Parse and generate a user-written paradigm (YAML text, e.g. from the app's editor)."""
    p = parse_text(text, lexicon())
    return to_task(p, generate(p, lexicon(), n_pairs, seed))
