"""Reading paradigm YAML safely: a size cap, no anchors or aliases, bounded depth and scan time.

A paradigm typed into the app is untrusted text. YAML aliases let a few hundred bytes expand
into millions of nodes (nested anchors, each level repeating the one before), and the line map
that locates errors would follow every one of them; so anchors and aliases are refused while
the text is still a stream of tokens, before anything is composed.
"""

from __future__ import annotations

import time
from typing import Any

import yaml

from taskspace_core.builtin.schema import ParadigmError

#: Largest paradigm text accepted from the editor (a long paradigm is about 2 KB).
MAX_PARADIGM_BYTES = 64 * 1024
#: Deepest nesting of mappings and lists (a paradigm needs 4).
MAX_YAML_DEPTH = 32
#: Wall-clock bound on scanning the tokens; a 64 KB text scans in well under this.
PARSE_TIME_LIMIT_S = 2.0

# libyaml's loader when PyYAML was built with it: about 5x faster on the largest accepted text
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_OPEN = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken)
_OPEN += (yaml.FlowSequenceStartToken,)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _refuse(message: str, line: int | None = None) -> ParadigmError:
    return ParadigmError("(unparsed)", "(yaml)", message, line)


def _check_tokens(text: str, deadline: float) -> None:
    """Refuse anchors, aliases and deep nesting from the token stream (linear in the text)."""
    depth = 0
    for n, tok in enumerate(yaml.scan(text, Loader=_Loader)):
        if isinstance(tok, (yaml.AnchorToken, yaml.AliasToken)):
            kind = "an anchor (&" if isinstance(tok, yaml.AnchorToken) else "an alias (*"
            raise _refuse(
                f"the text uses {kind}{tok.value}); YAML anchors and aliases are not accepted in a paradigm "
                "(a few of them can make a short text expand without bound): write each value out in full",
                tok.start_mark.line + 1,
            )
        if isinstance(tok, _OPEN):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise _refuse(
                    f"the text nests lists and mappings more than {MAX_YAML_DEPTH} levels deep "
                    "(MAX_YAML_DEPTH); a paradigm needs only a few",
                    tok.start_mark.line + 1,
                )
        elif isinstance(tok, _CLOSE):
            depth -= 1
        if n % 256 == 0 and time.monotonic() > deadline:
            raise _refuse(f"reading the YAML took longer than {PARSE_TIME_LIMIT_S} s (PARSE_TIME_LIMIT_S)")


def load_yaml(text: str, max_bytes: int | None = MAX_PARADIGM_BYTES) -> tuple[Any, yaml.Node | None]:
    """The data and the node tree of ``text``; raises :class:`ParadigmError` for anything refused.

    ``max_bytes=None`` lifts the size cap (for the built-in paradigm files, which are trusted in
    size but still read without anchors). Never raises anything but ParadigmError.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if max_bytes is not None and size > max_bytes:
        raise _refuse(
            f"the text is {size:,} bytes, above the limit of {max_bytes:,} (MAX_PARADIGM_BYTES); "
            "a paradigm is one mapping of a few lines: split a long text into several paradigms"
        )
    try:
        _check_tokens(text, time.monotonic() + PARSE_TIME_LIMIT_S)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except ParadigmError:
        raise
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise _refuse(f"not valid YAML: {e}", mark.line + 1 if mark else None) from e
    except Exception as e:  # noqa: BLE001 - e.g. RecursionError, ValueError: untrusted text must not crash the page
        raise _refuse(f"the YAML could not be read ({type(e).__name__}: {str(e)[:200]})") from e
    return data, node


def line_map(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    """Path of keys and indices -> line number, for error messages (linear: aliases are refused)."""
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            line_map(v, path + (key,), out)
            out[path + (key,)] = k.start_mark.line + 1  # a key's own line, not its value's
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            line_map(v, path + (i,), out)
