"""Parsing paradigms: check a YAML mapping field by field against the lexicon and compile it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from taskspace_core.builtin.lexicon import Lexicon, _matches
from taskspace_core.builtin.schema import (
    _NAME_RE,
    _PLACEHOLDER_RE,
    CHANGES,
    FIELDS,
    OPTIONAL,
    REQUIRED,
    Constraint,
    Paradigm,
    Piece,
    Ref,
    Slot,
    _Ctx,
    check_change,
)
from taskspace_core.builtin.yaml_text import MAX_PARADIGM_BYTES, line_map, load_yaml
from taskspace_core.tasks import TaskError


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list | tuple) else [v]


def _parse_ref(text: str, ctx: _Ctx, field: str, vars_: Mapping[str, Sequence[str]], slot_names: set[str]) -> Ref:
    body = text[1:]
    flip = body.startswith("~")
    body = body.lstrip("~")
    if "." in body:
        target, feature = body.split(".", 1)
        if flip:
            raise ctx.err(field, f"'{text}': '~' (the other value) works on variables only, not slot features")
        if target not in slot_names:
            raise ctx.err(field, f"'{text}' refers to unknown slot '{target}'; slots are {sorted(slot_names)}")
        return Ref(target, feature, False)
    if body not in vars_:
        raise ctx.err(field, f"'{text}' refers to unknown variable '{body}'; variables are {sorted(vars_)}")
    if flip and len(vars_[body]) != 2:
        raise ctx.err(field, f"'{text}': '~' needs a variable with exactly two values")
    return Ref(body, None, flip)


def parse_paradigm(
    data: Any, lines: Mapping[tuple[Any, ...], int], lexicon: Lexicon, base: tuple[Any, ...] = ()
) -> Paradigm:
    """Validate one paradigm mapping and compile it; raises :class:`ParadigmError`."""
    name = str(data.get("name", "")) if isinstance(data, dict) else ""
    ctx = _Ctx(name or "(unnamed)", lines, base)
    _check_fields(data, name, ctx)
    change = str(data["change"])
    vars_ = _parse_vars(data, ctx)
    slots = _parse_slots(data, vars_, lexicon, ctx)
    order = _sampling_order(slots, ctx)
    _check_slot_refs(slots, lexicon, ctx)
    good, bad = (_compile_template(data[k], k, slots, vars_, lexicon, ctx) for k in ("good", "bad"))
    if good == bad:
        raise ctx.err("bad", "the bad template is identical to the good one, so every pair would be good == bad")
    used = {p.slot for p in good + bad if p.text is None}
    for s in slots:
        if s not in used:
            # an unused slot still multiplies duplicates; flag it as the likely typo it is
            raise ctx.err(f"slots.{s}", f"slot '{s}' is not used in the good or bad template")
    mirrors = str(data.get("mirrors") or "")
    return Paradigm(
        name=name,
        category=str(data["category"]),
        field=str(data["field"]),
        description=str(data["description"]).strip(),
        change=change,
        mirrors=mirrors,
        example=_parse_example(data.get("example"), change, ctx),
        vars=vars_,
        slots=tuple(slots[s] for s in order),
        good=good,
        bad=bad,
        distinct=bool(data.get("distinct", True)),
        tags=_parse_tags(data.get("tags"), change, mirrors, ctx),
        lines=dict(lines),
        base=base,
    )


def _check_fields(data: Any, name: str, ctx: _Ctx) -> None:
    if not isinstance(data, dict):
        raise ctx.err("", "a paradigm is a YAML mapping with keys " + ", ".join(REQUIRED))
    for k in REQUIRED:
        if k not in data or data[k] in (None, ""):
            raise ctx.err(k if k in data else "", f"missing required field '{k}'")
    for k in data:
        if k not in REQUIRED + OPTIONAL:
            raise ctx.err(str(k), f"unknown field '{k}'; allowed: {', '.join(REQUIRED + OPTIONAL)}")
    if not _NAME_RE.match(name):
        raise ctx.err("name", f"'{name}' is not a valid name (letters, digits, underscores; starts with a letter)")
    if data["field"] not in FIELDS:
        raise ctx.err("field", f"'{data['field']}' is not one of {', '.join(FIELDS)}")
    if str(data["change"]) not in CHANGES:
        raise ctx.err("change", f"'{data['change']}' is not one of {', '.join(CHANGES)}")


def _parse_vars(data: dict[str, Any], ctx: _Ctx) -> dict[str, tuple[str, ...]]:
    vars_raw = data.get("vars") or {}
    if not isinstance(vars_raw, dict):
        raise ctx.err("vars", "vars is a mapping: name -> list of values")
    vars_: dict[str, tuple[str, ...]] = {}
    for vname, vals in vars_raw.items():
        if not isinstance(vals, list) or not vals:
            raise ctx.err(f"vars.{vname}", "a variable needs a non-empty list of values")
        vars_[str(vname)] = tuple(str(v) for v in vals)
    return vars_


def _parse_slots(
    data: dict[str, Any], vars_: Mapping[str, Sequence[str]], lexicon: Lexicon, ctx: _Ctx
) -> dict[str, Slot]:
    slots_raw = data["slots"]
    if not isinstance(slots_raw, dict):
        raise ctx.err("slots", "slots is a mapping: slot name -> {from: <part of speech>, where: {...}} or [words]")
    slot_names = {str(s) for s in slots_raw}
    slots: dict[str, Slot] = {}
    for sname, spec in slots_raw.items():
        sname = str(sname)
        f = f"slots.{sname}"
        if not _NAME_RE.match(sname):
            raise ctx.err(f, f"'{sname}' is not a valid slot name")
        if isinstance(spec, list):
            if not spec:
                raise ctx.err(f, "a literal slot needs at least one word")
            if any(isinstance(w, bool) for w in spec):
                # YAML reads bare no/yes/on/off as booleans
                raise ctx.err(f, "a word here was read as true/false by YAML: put quotes around no, yes, on, off")
            slots[sname] = Slot(sname, None, tuple(str(w) for w in spec), (), ())
            continue
        slots[sname] = _parse_lexical_slot(sname, spec, vars_, slot_names, lexicon, ctx)
    return slots


def _slot_constraints(f: str, spec: dict[str, Any], ctx: _Ctx) -> list[tuple[str, str, Any, bool]]:
    """(field path, feature, raw value, negate) for every 'where' and 'unless' entry."""
    constraints: list[tuple[str, str, Any, bool]] = []
    for key in ("where", "unless"):
        block = spec.get(key) or {}
        if not isinstance(block, dict):
            raise ctx.err(f"{f}.{key}", f"{key} is a mapping: feature -> value, [values], !value or $reference")
        for feat, val in block.items():
            neg = isinstance(val, str) and val.startswith("!")
            # 'unless' negates each of its constraints, so one feature can be constrained twice
            constraints.append((f"{f}.{key}.{feat}", str(feat), val[1:] if neg else val, neg != (key == "unless")))
    return constraints


def _parse_lexical_slot(
    sname: str,
    spec: Any,
    vars_: Mapping[str, Sequence[str]],
    slot_names: set[str],
    lexicon: Lexicon,
    ctx: _Ctx,
) -> Slot:
    f = f"slots.{sname}"
    if not isinstance(spec, dict) or "from" not in spec:
        raise ctx.err(f, "a slot is {from: <part of speech>, where: {feature: value}} or a list of words")
    for k in spec:
        if k not in ("from", "where", "unless"):
            raise ctx.err(f"{f}.{k}", f"unknown slot key '{k}'; use 'from', 'where' and 'unless'")
    pos = str(spec["from"])
    if pos not in lexicon.parts:
        raise ctx.err(
            f"{f}.from", f"no part of speech '{pos}' in the lexicon; known: {', '.join(sorted(lexicon.parts))}"
        )
    entries = lexicon.parts[pos][1]
    known = lexicon.features(pos)
    cands = list(range(len(entries)))
    dynamic: list[Constraint] = []
    deps: set[str] = set()
    for wf, feat, raw, negate in _slot_constraints(f, spec, ctx):
        if feat not in known:
            raise ctx.err(
                wf, f"no '{pos}' entry in the lexicon has feature '{feat}'; known: {', '.join(sorted(known))}"
            )
        if isinstance(raw, str) and raw.startswith("$"):
            ref = _parse_ref(raw, ctx, wf, vars_, slot_names)
            if ref.target == sname:
                raise ctx.err(wf, "a slot cannot refer to itself")
            if ref.feature is None:
                missing = [v for v in vars_[ref.target] if not any(_matches(e.get(feat), [v]) for e in entries)]
                if missing:
                    raise ctx.err(wf, f"no '{pos}' entry has {feat} = {missing[0]} (a value of ${ref.target})")
            else:
                deps.add(ref.target)
            dynamic.append(Constraint(feat, ref, negate))
            continue
        values = tuple(_as_list(raw))
        if not any(_matches(entries[i].get(feat), values) for i in range(len(entries))):
            raise ctx.err(wf, f"no '{pos}' entry has {feat} = {raw}")
        cands = [i for i in cands if _matches(entries[i].get(feat), values) != negate]
    if not cands:
        raise ctx.err(f"{f}.where", f"no '{pos}' entry meets all of these constraints together")
    return Slot(sname, pos, tuple(cands), tuple(dynamic), tuple(sorted(deps)))


def _sampling_order(slots: Mapping[str, Slot], ctx: _Ctx) -> list[str]:
    """A slot after the slots its $slot.feature references read; refuses cycles."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(s: str, chain: tuple[str, ...]) -> None:
        if state.get(s) == 2:
            return
        if state.get(s) == 1:
            raise ctx.err(f"slots.{s}", "circular references between slots: " + " -> ".join(chain + (s,)))
        state[s] = 1
        for d in slots[s].deps:
            visit(d, chain + (s,))
        state[s] = 2
        order.append(s)

    for s in slots:
        visit(s, ())
    return order


def _check_slot_refs(slots: Mapping[str, Slot], lexicon: Lexicon, ctx: _Ctx) -> None:
    """A $slot.feature reference must name a feature the referenced slot's part of speech has."""
    for s in slots.values():
        for c in s.dynamic:
            if isinstance(c.values, Ref) and c.values.feature is not None:
                tgt = slots[c.values.target]
                if tgt.pos is None or c.values.feature not in lexicon.features(tgt.pos):
                    raise ctx.err(
                        f"slots.{s.name}.where.{c.feature}",
                        f"slot '{tgt.name}' has no feature '{c.values.feature}'",
                    )


def _compile_template(
    text: Any,
    key: str,
    slots: Mapping[str, Slot],
    vars_: Mapping[str, Sequence[str]],
    lexicon: Lexicon,
    ctx: _Ctx,
) -> tuple[Piece, ...]:
    if not isinstance(text, str):
        raise ctx.err(key, 'a template is a string such as "{subj} {verb.past} {obj}."')
    if text.count("{") != text.count("}"):
        raise ctx.err(key, "unbalanced braces")
    pieces: list[Piece] = []
    pos = 0
    for m in _PLACEHOLDER_RE.finditer(text):
        if m.start() > pos:
            pieces.append(Piece(text[pos : m.start()]))
        pos = m.end()
        inner = m.group(1).strip()
        sname, _, form = inner.partition(".")
        if sname not in slots:
            raise ctx.err(key, f"unknown slot '{sname}' in {{{inner}}}; slots are {', '.join(slots)}")
        slot = slots[sname]
        if form:
            if slot.pos is None:
                raise ctx.err(key, f"{{{inner}}}: slot '{sname}' is a word list and has no forms")
            form_names = lexicon.parts[slot.pos][0]
            for variant in _expand_form(form, vars_, ctx, key):
                if variant not in form_names:
                    raise ctx.err(
                        key, f"{{{inner}}}: '{slot.pos}' has no form '{variant}'; forms: {', '.join(form_names)}"
                    )
        pieces.append(Piece(None, sname, form))
    if pos < len(text):
        pieces.append(Piece(text[pos:]))
    return tuple(pieces)


def _parse_example(ex: Any, change: str, ctx: _Ctx) -> tuple[str, str] | None:
    if ex is None:
        return None
    if not (isinstance(ex, list) and len(ex) == 2 and all(isinstance(x, str) for x in ex)):
        raise ctx.err("example", "example is a list of two sentences: [good, bad]")
    if not check_change(ex[0], ex[1], change):
        raise ctx.err("example", f"the example's two sentences do not differ by a '{change}'")
    return (ex[0], ex[1])


def _parse_tags(tags_raw: Any, change: str, mirrors: str, ctx: _Ctx) -> tuple[tuple[str, str], ...]:
    tags_raw = tags_raw or {}
    if not isinstance(tags_raw, dict):
        raise ctx.err("tags", "tags is a mapping: tag name -> label")
    tags = [("change", change)] + ([("mirrors", mirrors)] if mirrors else [])
    tags += [(str(k), str(v)) for k, v in tags_raw.items() if str(k) not in ("change", "mirrors")]
    return tuple(tags)


def _expand_form(form: str, vars_: Mapping[str, Sequence[str]], ctx: _Ctx, key: str) -> list[str]:
    """All concrete form names a form spec like ``pres_$num`` can take."""
    m = re.search(r"\$(~?)([A-Za-z_][A-Za-z0-9_]*)", form)
    if not m:
        return [form]
    vname = m.group(2)
    if vname not in vars_:
        raise ctx.err(key, f"form '{form}' uses unknown variable '${vname}'")
    if m.group(1) and len(vars_[vname]) != 2:
        raise ctx.err(key, f"form '{form}': '~' needs a variable with exactly two values")
    out = []
    for v in vars_[vname]:
        out += _expand_form(form[: m.start()] + v + form[m.end() :], vars_, ctx, key)
    return out


def parse_text(text: str, lexicon: Lexicon, max_bytes: int = MAX_PARADIGM_BYTES) -> Paradigm:
    """Parse one user-written paradigm from YAML text (size-capped, no anchors or aliases)."""
    data, node = load_yaml(text, max_bytes)
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        line_map(node, (), lines)
    return parse_paradigm(data, lines, lexicon)


def parse_file(path: Path, lexicon: Lexicon) -> list[Paradigm]:
    """Parse a file holding a YAML list of paradigms."""
    data, node = load_yaml(path.read_text(encoding="utf-8"), max_bytes=None)
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        line_map(node, (), lines)
    if not isinstance(data, list):
        raise TaskError(f"{path.name}: a paradigm file holds a YAML list of paradigms")
    return [parse_paradigm(d, lines, lexicon, base=(i,)) for i, d in enumerate(data)]
