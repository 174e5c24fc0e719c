"""Generating minimal pairs from a compiled paradigm: sampling slots, rendering templates, surface clean-up."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from taskspace_core.builtin.lexicon import Lexicon, _matches
from taskspace_core.builtin.schema import _AN_EXCEPTIONS, Paradigm, Piece, Ref, _Ctx, check_change
from taskspace_core.tasks import MinimalPair, Task


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


_PlanSlot = tuple[str, Any, list[int], Any, tuple[Any, ...], tuple[Any, ...], dict[Any, list[int]]]


def _plan(p: Paradigm, lexicon: Lexicon) -> list[_PlanSlot]:
    """Per slot: (name, pos, static candidates, entries or literal form dicts, key recipe, constraints, cache)."""
    plan: list[_PlanSlot] = []
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
    return plan


def _draw(
    plan: list[_PlanSlot], values: Mapping[str, str], distinct: bool, rnd: Any
) -> dict[str, Mapping[str, str]] | None:
    """One word per slot for the sampled variable values, or None when a slot has no candidate left."""
    picked: dict[str, Mapping[str, Any]] = {}
    words: dict[str, Mapping[str, str]] = {}
    used: set[tuple[str, int]] = set()
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
            return None
        i = cands[int(rnd() * len(cands))]
        if pos is not None:
            if distinct and (pos, i) in used:
                # rare: filter only when the first draw collides with an earlier slot
                cands = [j for j in cands if (pos, j) not in used]
                if not cands:
                    return None
                i = cands[int(rnd() * len(cands))]
            used.add((pos, i))
            picked[name] = entries[i]
            words[name] = entries[i]["forms"]
        else:
            words[name] = entries[i]
    return words


def generate(p: Paradigm, lexicon: Lexicon, n_pairs: int, seed: int = 0) -> list[MinimalPair]:
    """``n_pairs`` distinct pairs, deterministic per seed; raises ParadigmError when too few exist."""
    ctx = _Ctx(p.name, p.lines, p.base)
    if n_pairs < 1:
        raise ctx.err("", f"n_pairs must be at least 1, got {n_pairs}")
    rnd = random.Random(f"{p.name}\x1f{seed}").random
    seen: set[tuple[str, str]] = set()
    out: list[MinimalPair] = []
    var_items = [(k, v, len(v)) for k, v in p.vars.items()]
    plan = _plan(p, lexicon)
    pieces = [_compile_pieces(p.good), _compile_pieces(p.bad)]
    forms_cache: dict[tuple[Any, ...], str] = {}
    # tries scale with the request; a paradigm that keeps repeating itself is too small
    max_tries = 40 * n_pairs + 2000
    tries = 0
    while len(out) < n_pairs and tries < max_tries:
        tries += 1
        values = {k: v[int(rnd() * n)] for k, v, n in var_items}
        words = _draw(plan, values, p.distinct, rnd)
        if words is None:
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
