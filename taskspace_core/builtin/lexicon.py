"""The lexicon: parts of speech, their form names and entries, read from ``lexicon/*.yaml``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from taskspace_core.tasks import TaskError

LEXICON_DIR = Path(__file__).parent / "lexicon"


@dataclass(frozen=True)
class Lexicon:
    """Part of speech -> (form names, entries); every entry is a dict of features + 'forms'."""

    parts: Mapping[str, tuple[tuple[str, ...], tuple[Mapping[str, Any], ...]]]

    def features(self, pos: str) -> set[str]:
        return {k for e in self.parts[pos][1] for k in e if k != "forms"}


def load_lexicon(directory: Path = LEXICON_DIR) -> Lexicon:
    """Read every ``*.yaml`` lexicon file: ``{pos: {forms: [...], entries: [...]}}``."""
    parts: dict[str, tuple[tuple[str, ...], tuple[Mapping[str, Any], ...]]] = {}
    for f in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        for pos, spec in data.items():
            form_names = tuple(spec.get("forms", ["word"]))
            aliases = dict(spec.get("aliases") or {})
            entries = []
            for i, raw in enumerate(spec["entries"]):
                e = dict(raw) if isinstance(raw, dict) else {"forms": raw}
                words = str(e.pop("forms", e.pop("word", ""))).split()
                if len(words) != len(form_names):
                    raise TaskError(f"lexicon {f.name}, {pos} entry {i} ({words}): expected forms {list(form_names)}")
                e["forms"] = dict(zip(form_names, (w.replace("_", " ") for w in words), strict=True))
                for alias, src in aliases.items():
                    e["forms"][alias] = e["forms"][src]
                e["forms"][""] = e["forms"][form_names[0]]  # "{slot}" with no form: the first form
                e.setdefault("lemma", words[0])
                entries.append(e)
            if pos in parts:
                raise TaskError(f"lexicon {f.name}: part of speech '{pos}' is defined twice")
            parts[pos] = (form_names + tuple(aliases), tuple(entries))
    return Lexicon(parts)


def _matches(entry_value: Any, values: Sequence[Any]) -> bool:
    if entry_value is None:
        return False
    ev = entry_value if isinstance(entry_value, list) else [entry_value]
    return any(str(a).lower() == str(b).lower() for a in ev for b in values)
