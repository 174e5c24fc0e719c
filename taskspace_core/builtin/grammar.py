"""Template grammar: paradigm definitions (YAML) + lexicon -> minimal pairs.

The format is documented in ``FORMAT.md`` next to this file. Every error in a
paradigm is a :class:`ParadigmError` naming the paradigm, the field and, where
known, the line, so that a linguist editing YAML can find it.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from taskspace_core.tasks import MinimalPair, Task, TaskError

HERE = Path(__file__).parent
LEXICON_DIR = HERE / "lexicon"

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


def finish(sentence: str) -> str:
    """Surface clean-up shared by good and bad: spaces, a/an, capital letter."""
    words = sentence.split()
    if "a" not in words and "A" not in words:
        out = " ".join(words)
        return out[:1].upper() + out[1:]
    for i in range(len(words) - 1):
        if words[i].lower() == "a":
            nxt = words[i + 1].lower()
            if nxt[:1] in "aeiou" and not nxt.startswith(_AN_EXCEPTIONS):
                words[i] = words[i] + "n"
    out = " ".join(words)
    return out[:1].upper() + out[1:]


# ------------------------------------------------------------------ lexicon


@dataclass(frozen=True)
class Lexicon:
    """Part of speech -> (form names, entries); every entry is a dict of features + 'forms'."""

    parts: Mapping[str, tuple[tuple[str, ...], tuple[Mapping[str, Any], ...]]]

    def features(self, pos: str) -> set[str]:
        return {k for e in self.parts[pos][1] for k in e if k != "forms"}


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list | tuple) else [v]


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


# ------------------------------------------------------------------ parsing


def _line_map(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            _line_map(v, path + (key,), out)
            out[path + (key,)] = k.start_mark.line + 1  # a key's own line, not its value's
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, path + (i,), out)


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


def _matches(entry_value: Any, values: Sequence[Any]) -> bool:
    if entry_value is None:
        return False
    ev = entry_value if isinstance(entry_value, list) else [entry_value]
    return any(str(a).lower() == str(b).lower() for a in ev for b in values)


def parse_paradigm(
    data: Any, lines: Mapping[tuple[Any, ...], int], lexicon: Lexicon, base: tuple[Any, ...] = ()
) -> Paradigm:
    """Validate one paradigm mapping and compile it; raises :class:`ParadigmError`."""
    name = str(data.get("name", "")) if isinstance(data, dict) else ""
    ctx = _Ctx(name or "(unnamed)", lines, base)
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
    change = str(data["change"])
    if change not in CHANGES:
        raise ctx.err("change", f"'{change}' is not one of {', '.join(CHANGES)}")

    vars_raw = data.get("vars") or {}
    if not isinstance(vars_raw, dict):
        raise ctx.err("vars", "vars is a mapping: name -> list of values")
    vars_: dict[str, tuple[str, ...]] = {}
    for vname, vals in vars_raw.items():
        if not isinstance(vals, list) or not vals:
            raise ctx.err(f"vars.{vname}", "a variable needs a non-empty list of values")
        vars_[str(vname)] = tuple(str(v) for v in vals)

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
        constraints: list[tuple[str, str, Any, bool]] = []
        for key in ("where", "unless"):
            block = spec.get(key) or {}
            if not isinstance(block, dict):
                raise ctx.err(f"{f}.{key}", f"{key} is a mapping: feature -> value, [values], !value or $reference")
            for feat, val in block.items():
                neg = isinstance(val, str) and val.startswith("!")
                # 'unless' negates each of its constraints, so one feature can be constrained twice
                constraints.append((f"{f}.{key}.{feat}", str(feat), val[1:] if neg else val, neg != (key == "unless")))
        for wf, feat, raw, negate in constraints:
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
        slots[sname] = Slot(sname, pos, tuple(cands), tuple(dynamic), tuple(sorted(deps)))

    # sampling order: a slot after the slots its $slot.feature references read
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
    # a $slot.feature reference must name a feature the referenced slot's part of speech has
    for s in slots.values():
        for c in s.dynamic:
            if isinstance(c.values, Ref) and c.values.feature is not None:
                tgt = slots[c.values.target]
                if tgt.pos is None or c.values.feature not in lexicon.features(tgt.pos):
                    raise ctx.err(
                        f"slots.{s.name}.where.{c.feature}",
                        f"slot '{tgt.name}' has no feature '{c.values.feature}'",
                    )

    def compile_template(key: str) -> tuple[Piece, ...]:
        text = data[key]
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

    good, bad = compile_template("good"), compile_template("bad")
    if good == bad:
        raise ctx.err("bad", "the bad template is identical to the good one, so every pair would be good == bad")
    used = {p.slot for p in good + bad if p.text is None}
    for s in slots:
        if s not in used:
            # an unused slot still multiplies duplicates; flag it as the likely typo it is
            raise ctx.err(f"slots.{s}", f"slot '{s}' is not used in the good or bad template")

    example = None
    if data.get("example") is not None:
        ex = data["example"]
        if not (isinstance(ex, list) and len(ex) == 2 and all(isinstance(x, str) for x in ex)):
            raise ctx.err("example", "example is a list of two sentences: [good, bad]")
        if not check_change(ex[0], ex[1], change):
            raise ctx.err("example", f"the example's two sentences do not differ by a '{change}'")
        example = (ex[0], ex[1])

    tags_raw = data.get("tags") or {}
    if not isinstance(tags_raw, dict):
        raise ctx.err("tags", "tags is a mapping: tag name -> label")
    mirrors = str(data.get("mirrors") or "")
    tags = [("change", change)] + ([("mirrors", mirrors)] if mirrors else [])
    tags += [(str(k), str(v)) for k, v in tags_raw.items() if str(k) not in ("change", "mirrors")]
    return Paradigm(
        name=name,
        category=str(data["category"]),
        field=str(data["field"]),
        description=str(data["description"]).strip(),
        change=change,
        mirrors=mirrors,
        example=example,
        vars=vars_,
        slots=tuple(slots[s] for s in order),
        good=good,
        bad=bad,
        distinct=bool(data.get("distinct", True)),
        tags=tuple(tags),
        lines=dict(lines),
        base=base,
    )


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


def parse_text(text: str, lexicon: Lexicon) -> Paradigm:
    """Parse one user-written paradigm from YAML text."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ParadigmError("(unparsed)", "(yaml)", f"not valid YAML: {e}", mark.line + 1 if mark else None) from e
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _line_map(node, (), lines)
    return parse_paradigm(data, lines, lexicon)


def parse_file(path: Path, lexicon: Lexicon) -> list[Paradigm]:
    """Parse a file holding a YAML list of paradigms."""
    text = path.read_text(encoding="utf-8")
    node = yaml.compose(text)
    data = yaml.safe_load(text)
    lines: dict[tuple[Any, ...], int] = {}
    _line_map(node, (), lines)
    if not isinstance(data, list):
        raise TaskError(f"{path.name}: a paradigm file holds a YAML list of paradigms")
    return [parse_paradigm(d, lines, lexicon, base=(i,)) for i, d in enumerate(data)]


# ------------------------------------------------------------------ generation


def generate(p: Paradigm, lexicon: Lexicon, n_pairs: int, seed: int = 0) -> list[MinimalPair]:
    """``n_pairs`` distinct pairs, deterministic per seed; raises ParadigmError when too few exist."""
    ctx = _Ctx(p.name, p.lines, p.base)
    if n_pairs < 1:
        raise ctx.err("", f"n_pairs must be at least 1, got {n_pairs}")
    rnd = random.Random(f"{p.name}\x1f{seed}").random
    seen: set[tuple[str, str]] = set()
    out: list[MinimalPair] = []
    var_items = [(k, v, len(v)) for k, v in p.vars.items()]
    # per slot: (name, pos, static candidates, entries or literal form dicts, key recipe, constraints, cache)
    plan = []
    for s in p.slots:
        if s.pos is None:
            plan.append((s.name, None, list(range(len(s.choices))), [{"": w} for w in s.choices], (), (), {}))
            continue
        recipe = []
        for c in s.dynamic:
            ref = c.values
            assert isinstance(ref, Ref)
            if ref.feature is not None:
                recipe.append((0, ref.target, ref.feature))
            else:
                recipe.append((2 if ref.flip else 1, ref.target, tuple(p.vars[ref.target])))
        entries = lexicon.parts[s.pos][1]
        plan.append((s.name, s.pos, list(s.choices), entries, tuple(recipe), s.dynamic, {}))
    pieces = [_compile_pieces(p.good), _compile_pieces(p.bad)]
    forms_cache: dict[tuple[Any, ...], str] = {}
    # tries scale with the request; a paradigm that keeps repeating itself is too small
    max_tries = 40 * n_pairs + 2000
    tries = 0
    while len(out) < n_pairs and tries < max_tries:
        tries += 1
        values = {k: v[int(rnd() * n)] for k, v, n in var_items}
        picked: dict[str, Mapping[str, Any]] = {}
        words: dict[str, Mapping[str, str]] = {}
        used: set[tuple[str, int]] = set()
        ok = True
        for name, pos, static, entries, recipe, dynamic, cache in plan:
            cands = static
            if recipe:
                key = tuple(
                    _feature_key(picked[t].get(x))
                    if kind == 0
                    else ((values[t],) if kind == 1 else tuple(v for v in x if v != values[t]))
                    for kind, t, x in recipe
                )
                cands = cache.get(key)
                if cands is None:
                    cands = [
                        i
                        for i in static
                        if all(
                            _matches(entries[i].get(c.feature), vals) != c.negate
                            for c, vals in zip(dynamic, key, strict=True)
                        )
                    ]
                    cache[key] = cands
            if not cands:
                ok = False
                break
            i = cands[int(rnd() * len(cands))]
            if pos is not None:
                if p.distinct and (pos, i) in used:
                    # rare: filter only when the first draw collides with an earlier slot
                    cands = [j for j in cands if (pos, j) not in used]
                    if not cands:
                        ok = False
                        break
                    i = cands[int(rnd() * len(cands))]
                used.add((pos, i))
                picked[name] = entries[i]
                words[name] = entries[i]["forms"]
            else:
                words[name] = entries[i]
        if not ok:
            continue
        good, bad = (_render(pc, words, values, p.vars, forms_cache) for pc in pieces)
        if good == bad:
            raise ctx.err("bad", f"good and bad come out identical: '{good}'")
        if (good, bad) in seen:
            continue
        # the first pairs show whether the templates make the declared change (tests check all)
        if len(out) < 50 and not check_change(good, bad, p.change):
            raise ctx.err("change", f"the pair '{good}' / '{bad}' does not differ by a '{p.change}'")
        seen.add((good, bad))
        out.append(MinimalPair(good, bad))
    if len(out) < n_pairs:
        raise ctx.err(
            "slots",
            f"only {len(out)} distinct pairs could be made, {n_pairs} were requested; "
            "add lexicon entries, loosen 'where' constraints or ask for fewer pairs",
        )
    return out


def _feature_key(v: Any) -> tuple[Any, ...]:
    return tuple(v) if isinstance(v, list) else (v,)


def _compile_pieces(pieces: tuple[Piece, ...]) -> list[tuple[str | None, str, str, bool]]:
    return [(pc.text, pc.slot, pc.form, "$" in pc.form) for pc in pieces]


def _render(
    pieces: list[tuple[str | None, str, str, bool]],
    words: Mapping[str, Mapping[str, str]],
    values: Mapping[str, str],
    vars_: Mapping[str, Sequence[str]],
    forms_cache: dict[tuple[Any, ...], str],
) -> str:
    parts = []
    for text, slot, form, has_var in pieces:
        if text is not None:
            parts.append(text)
        elif has_var:
            key = (form, *values.values())
            concrete = forms_cache.get(key)
            if concrete is None:
                concrete = forms_cache[key] = _concrete_form(form, values, vars_)
            parts.append(words[slot][concrete])
        else:
            parts.append(words[slot][form])
    return finish("".join(parts))


def _concrete_form(form: str, values: Mapping[str, str], vars_: Mapping[str, Sequence[str]]) -> str:
    """``pres_$num`` -> ``pres_sg`` for the sampled variable values (``$~num``: the other value)."""
    return re.sub(
        r"\$(~?)([A-Za-z_][A-Za-z0-9_]*)",
        lambda m: (
            values[m.group(2)] if not m.group(1) else next(x for x in vars_[m.group(2)] if x != values[m.group(2)])
        ),
        form,
    )


def to_task(p: Paradigm, pairs: list[MinimalPair]) -> Task:
    return Task(
        name=p.name,
        pairs=tuple(pairs),
        category=p.category,
        field=p.field,
        description=p.description,
        tags=p.tags,
        source="builtin",
    )
