"""Values of the results cache as bytes, without pickle.

A value is a tree of JSON records (dicts, lists, tuples, str, int, float incl. nan/inf,
bool, None), NumPy arrays and scalars, and allow-listed frozen dataclasses named by type
name. :func:`encode` writes one ``.npz`` archive (``np.savez``): the tree as UTF-8 JSON in
the member ``__tree__`` and every array as its own member. :func:`decode` reads it with
``allow_pickle=False`` and rebuilds only what the tree names: nothing in a cache file can
make it import or call anything but the constructors of the registered dataclasses.

Tags in the tree are JSON objects with a ``"$"`` member (any other dict is a plain object):
``t`` tuple, ``d`` dict that itself has a ``"$"`` key, ``kv`` dict with non-str keys,
``f`` non-finite float, ``a`` array, ``s`` NumPy bool/int/float scalar (inline), ``a0``
other NumPy scalar (a 0-d array), ``c`` dataclass, ``ta`` tuple of 1-D arrays of one dtype
(one member, concatenated, with their lengths: per-pair margins are thousands of small
arrays, and a member each made a 67-task space several times slower to read).
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import math
import zipfile
from typing import Any

import numpy as np

_TREE = "__tree__"
# type name -> "module:attribute"; resolved lazily so reading a space never imports torch
_ALLOWED: dict[str, str] = {
    "SpaceResult": "taskspace_core.results:SpaceResult",
    "TaskInfo": "taskspace_core.results:TaskInfo",
    "ModelInfo": "taskspace_core.results:ModelInfo",
    "FTGDResult": "taskspace_core.ftgd:FTGDResult",
    "PairMargins": "taskspace_core.spaces.uncertainty:PairMargins",
}
_RESOLVED: dict[str, type] = {}
_SCALAR_KINDS = "biuf"  # NumPy scalars stored inline in the JSON tree


class CodecError(ValueError):
    """A value that cannot be stored, or bytes that are not a valid cache value."""


def register(cls: type) -> type:
    """Allow a frozen dataclass in cache values (usable as a class decorator)."""
    if not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen):  # type: ignore[attr-defined]
        raise CodecError(f"only frozen dataclasses can be registered, not {cls!r}")
    name = cls.__name__
    known = _RESOLVED.get(name)
    if known is not None and known is not cls:
        raise CodecError(f"another class named {name} is registered already ({known.__module__})")
    _ALLOWED[name] = f"{cls.__module__}:{cls.__qualname__}"
    _RESOLVED[name] = cls
    return cls


def _resolve(name: str) -> type:
    cls = _RESOLVED.get(name)
    if cls is None:
        if name not in _ALLOWED:
            raise CodecError(f"type '{name}' is not allowed in cache values")
        module, _, attr = _ALLOWED[name].partition(":")
        cls = getattr(importlib.import_module(module), attr)
        _RESOLVED[name] = cls
    return cls


class _Encoder:
    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []

    def array(self, tag: str, a: np.ndarray) -> dict[str, Any]:
        if a.dtype.hasobject:
            raise CodecError("arrays of Python objects cannot be stored; convert them to numbers or strings")
        self.arrays.append(a)
        return {"$": tag, "v": len(self.arrays) - 1}

    def tree(self, v: Any) -> Any:
        t = type(v)
        if v is None or t in (bool, int, str):
            return v
        if t is float:
            return v if math.isfinite(v) else {"$": "f", "v": repr(v)}
        if t is list:
            return [self.tree(x) for x in v]
        if t is tuple:
            if len(v) > 1 and all(type(x) is np.ndarray and x.ndim == 1 and x.dtype == v[0].dtype for x in v):
                return {**self.array("ta", np.concatenate(v)), "n": [len(x) for x in v]}
            return {"$": "t", "v": [self.tree(x) for x in v]}
        if t is dict:
            if all(type(k) is str for k in v):
                body = {k: self.tree(x) for k, x in v.items()}
                return {"$": "d", "v": body} if "$" in v else body
            return {"$": "kv", "v": [[self.tree(k), self.tree(x)] for k, x in v.items()]}
        if t is np.ndarray:
            return self.array("a", v)
        if isinstance(v, np.generic):
            if v.dtype.kind in _SCALAR_KINDS:  # inline: an archive member per scalar would be slow
                return {"$": "s", "dt": v.dtype.str, "v": self.tree(v.item())}
            return self.array("a0", np.asarray(v))
        if dataclasses.is_dataclass(v) and _ALLOWED.get(t.__name__) and _resolve(t.__name__) is t:
            fields = {f.name: self.tree(getattr(v, f.name)) for f in dataclasses.fields(v) if f.init}
            return {"$": "c", "n": t.__name__, "v": fields}
        raise CodecError(f"values of type {t.__module__}.{t.__qualname__} cannot be stored in the cache")


def encode(value: Any) -> bytes:
    """The bytes of ``value`` (raises :class:`CodecError` for types outside the codec)."""
    enc = _Encoder()
    tree = json.dumps(enc.tree(value), separators=(",", ":"), allow_nan=False).encode()
    buf = io.BytesIO()
    members = {f"a{i}": a for i, a in enumerate(enc.arrays)}
    np.savez(buf, **{_TREE: np.frombuffer(tree, dtype=np.uint8)}, **members)
    return buf.getvalue()


class _Decoder:
    def __init__(self, archive: Any) -> None:
        self.archive = archive

    def tree(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.tree(x) for x in v]
        if not isinstance(v, dict):
            return v
        tag = v.get("$")
        if tag is None:
            return {k: self.tree(x) for k, x in v.items()}
        body = v.get("v")
        if tag == "t":
            return tuple(self.tree(x) for x in body)
        if tag == "d":
            return {k: self.tree(x) for k, x in body.items()}
        if tag == "kv":
            return {_hashable(self.tree(k)): self.tree(x) for k, x in body}
        if tag == "f":
            if body not in ("nan", "inf", "-inf"):
                raise CodecError(f"bad float {body!r}")
            return float(body)
        if tag == "s":
            dt = np.dtype(str(v.get("dt")))
            if dt.kind not in _SCALAR_KINDS:
                raise CodecError(f"bad scalar type {dt}")
            return dt.type(self.tree(body))
        if tag == "ta":
            a, sizes = self.archive[f"a{int(body)}"], v.get("n")
            if not isinstance(sizes, list) or any(type(k) is not int or k < 0 for k in sizes) or sum(sizes) != a.size:
                raise CodecError("bad lengths of a tuple of arrays")
            return tuple(np.split(a, np.cumsum(sizes)[:-1]))
        if tag in ("a", "a0"):
            a = self.archive[f"a{int(body)}"]
            return a[()] if tag == "a0" else a
        if tag == "c":
            cls = _resolve(str(v.get("n")))
            names = {f.name for f in dataclasses.fields(cls) if f.init}
            if not isinstance(body, dict) or set(body) - names:
                raise CodecError(f"fields of {cls.__name__} do not match the stored record")
            return cls(**{k: self.tree(x) for k, x in body.items()})
        raise CodecError(f"unknown tag {tag!r}")


def _hashable(k: Any) -> Any:
    if isinstance(k, list | dict):
        raise CodecError("a dict key must be a str, number, bool, None or tuple")
    return k


def decode(data: bytes) -> Any:
    """The value :func:`encode` wrote; raises :class:`CodecError` on anything else."""
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CodecError("not a valid cache value: not an .npz archive")
        with archive:
            tree = json.loads(archive[_TREE].tobytes().decode())
            return _Decoder(archive).tree(tree)
    except CodecError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, zipfile.BadZipFile) as e:
        raise CodecError(f"not a valid cache value: {type(e).__name__}: {e}") from e
