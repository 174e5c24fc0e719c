"""Pair-file format: the column names, the accepted file types, and names people use for our columns."""

from __future__ import annotations

import re

DEFAULT_MAX_BYTES = 50_000_000
MAX_ISSUES = 50  # per severity; the rest are counted in a final "... and N more" line
MIN_PAIRS_PER_TASK = 10

REQUIRED_COLUMNS = ("sentence_good", "sentence_bad", "task")
OPTIONAL_COLUMNS = ("category", "field", "description")
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

#: extension -> field delimiter, or "jsonl" for one JSON object per line
FORMATS: dict[str, str] = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_ACCEPTED = ".csv (comma-separated), .tsv or .tab (tab-separated), .jsonl or .ndjson (one JSON object per line)"

# Names people (and other benchmarks) use for our columns; only used to suggest a rename.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "sentence_good": (
        "good",
        "grammatical",
        "sentence_1",
        "sentence1",
        "sent_good",
        "good_sentence",
        "acceptable",
        "correct",
        "gram",
        "positive",
        "s_good",
        "sentence_grammatical",
        "ok",
        "sentence_a",
    ),
    "sentence_bad": (
        "bad",
        "ungrammatical",
        "sentence_2",
        "sentence2",
        "sent_bad",
        "bad_sentence",
        "unacceptable",
        "incorrect",
        "ungram",
        "negative",
        "s_bad",
        "sentence_ungrammatical",
        "star",
        "sentence_b",
    ),
    "task": ("paradigm", "uid", "phenomenon", "task_name", "condition", "name", "taskname", "subtask"),
    "category": ("linguistics_term", "phenomenon", "term", "cat"),
    "field": ("domain", "area", "subfield"),
    "description": ("desc", "notes", "comment", "comments"),
}

_SURROGATE = re.compile("[\udc80-\udcff]")  # undecodable bytes, kept by errors="surrogateescape"


def _canon(name: str) -> str:
    """Canonical form of a column name: 'Sentence Good' and 'sentence-good' -> 'sentence_good'."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


#: Longer sentences are refused at validation: they are almost always a broken cell (an unclosed quote
#: swallowing many rows), and a model would only truncate them at run time.
MAX_SENTENCE_CHARS = 1_000

# Invisible characters that make two identical-looking sentences differ: bidirectional controls
# (embeddings, overrides, isolates, marks) and zero-width characters (ZWSP, ZWNJ, ZWJ, word joiner, BOM).
_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_INVISIBLE_NAMES = {
    "\u061c": "arabic letter mark",
    "\u200b": "zero-width space",
    "\u200c": "zero-width non-joiner",
    "\u200d": "zero-width joiner",
    "\u200e": "left-to-right mark",
    "\u200f": "right-to-left mark",
    "\u2060": "word joiner",
    "\ufeff": "zero-width no-break space (BOM)",
}


def _invisible_name(ch: str) -> str:
    """A readable name for an invisible character, with its code point."""
    name = _INVISIBLE_NAMES.get(ch, "bidirectional control" if ch not in "\u2061\u2062\u2063\u2064" else "invisible")
    return f"{name} U+{ord(ch):04X}"
