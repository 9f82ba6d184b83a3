"""Free-form caption phrasing: sentence patterns with slots, per-style word lists, rendering.

A *pattern* is a string with

- slots ``{slot}`` or ``{slot:form}``: the slot's phrase in one grammatical form, e.g. ``{pos}``
  "near the top left" and ``{pos:tag}`` "top left" (each form has its own word list);
- filler slots ``{lead}`` and ``{tail}``: a phrase that states no factor ("operator note:");
- optional groups ``[...]`` around one droppable slot and its label (``[, colour: {colour}]``):
  the group disappears when that slot is left out.

A droppable slot outside a group (an attributive adjective) simply disappears; a *noun* slot is
never removed but written as a generic noun ("part") when left out. Articles before a slot phrase
follow it ("a" / "an", none before a plural noun). A :class:`Style` bundles the patterns and word
lists of one writing style; :func:`check_style` verifies that every phrase names one value of one
slot and never hides inside another slot's phrase or a filler, so the truth about a caption can be
read from which phrases it contains.

This module renders a caption from phrases already chosen; it draws nothing at random and plants
no misalignment (see :mod:`misalignlab.data.freeform.plant`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

FILLERS = ("lead", "tail")
_SLOT = re.compile(r"\{(\w+)(?::(\w+))?\}")
_GROUP = re.compile(r"\[([^\[\]]*)\]")
_MARK = re.compile(r"\x00(\w+)\x00")  # a written slot, kept opaque while the text is tidied
_TIDY = (
    (re.compile(r"\s+"), " "),
    (re.compile(r"\s*([,;])(\s*[,;])+"), r"\1"),  # a left-out slot between separators
    (re.compile(r"([:;(—]|\x00lead\x00)\s*,"), r"\1"),  # ... or right after a label, dash, bracket or lead
    (re.compile(r"\s+([,;:)])"), r"\1"),
    (re.compile(r"\(\s*"), "("),
    (re.compile(r",\s*\)"), ")"),
    (re.compile(r"\(\)\s*"), ""),
    (re.compile(r"^[\s,;]+|[\s,;]+$"), ""),
    (re.compile(r"\s+"), " "),
)
_ARTICLE = re.compile(r"(?:^|(?<=\s))(a|an) $")
_RUN = re.compile(r"(?:^|(?<=\s))(a|an) ((?:\x00\w+\x00 ?)+)")  # an article before adjacent slots
_VOWEL = tuple("aeiou")


@dataclass(frozen=True)
class Slot:
    """One stated unit of a caption.

    Parameters
    ----------
    name : str
        Name used in patterns (``{name}``).
    factors : tuple of str
        Factor columns the slot states; its value is their mixed-radix code, first most
        significant (``pos`` = ``pos_y · 3 + pos_x``).
    always : bool
        Every pattern states it.
    droppable : bool
        An incomplete caption may leave it out.
    noun : bool
        Left out, it is written as a generic noun instead of disappearing.
    """

    name: str
    factors: tuple[str, ...]
    always: bool = False
    droppable: bool = False
    noun: bool = False


@dataclass(frozen=True)
class Style:
    """Patterns and word lists of one writing style.

    Parameters
    ----------
    name : str
        Style name.
    patterns : tuple of str
        Sentence patterns (see the module docstring).
    words : mapping of str to tuple of tuple of str
        Word-list key (``slot`` or ``slot:form``) → per slot value, the phrases that say it.
    leads, tails : tuple of str
        Filler phrases for ``{lead}`` and ``{tail}``.
    generic : tuple of str
        Generic nouns written for a left-out noun slot.
    plural : frozenset of str
        Noun phrases that take no article ("slacks").
    """

    name: str
    patterns: tuple[str, ...]
    words: Mapping[str, tuple[tuple[str, ...], ...]]
    leads: tuple[str, ...]
    tails: tuple[str, ...]
    generic: tuple[str, ...] = ()
    plural: frozenset[str] = field(default_factory=frozenset)

    def phrase(self, key: str, value: int, choice: int) -> str:
        """Phrase ``choice`` (taken modulo the list length) of word list ``key`` for ``value``."""
        options = self.words[key][value]
        return options[choice % len(options)]

    def fillers(self) -> frozenset[str]:
        """Every phrase that fills a slot without stating a factor."""
        return frozenset(self.leads) | frozenset(self.tails) | frozenset(self.generic)


@functools.lru_cache(maxsize=4096)
def pattern_slots(pattern: str) -> tuple[tuple[str, str], ...]:
    """``(slot, word-list key)`` of every factor slot of ``pattern``, in order (fillers excluded)."""
    return tuple((m[1], f"{m[1]}:{m[2]}" if m[2] else m[1]) for m in _SLOT.finditer(pattern) if m[1] not in FILLERS)


@dataclass(frozen=True)
class Rendered:
    """A caption and the character span ``text[start:end]`` of each written slot phrase."""

    text: str
    spans: Mapping[str, tuple[int, int]]


def render(
    pattern: str, phrases: Mapping[str, str], fill: Mapping[str, str], plural: frozenset[str] = frozenset()
) -> Rendered:
    """Write ``pattern`` with the given phrases.

    Parameters
    ----------
    pattern : str
        A sentence pattern.
    phrases : mapping of str to str
        Slot → phrase for every slot written; a slot absent here and from ``fill`` is left out.
    fill : mapping of str to str
        Filler slot or left-out noun slot → text (written, but not a slot phrase).
    plural : frozenset of str
        Phrases that take no article.

    Returns
    -------
    Rendered
    """

    text = _skeleton(pattern, frozenset(phrases) | frozenset(fill))
    return _assemble(text, phrases, fill, plural)


@functools.lru_cache(maxsize=1 << 16)
def _skeleton(pattern: str, present: frozenset[str]) -> str:
    """The tidied pattern with a mark for each written slot or filler; left-out slots and groups gone.

    Fillers stay marks too, so the skeleton depends on the pattern and the slots written only.
    """

    def group(m: re.Match[str]) -> str:
        return m[1] if {s[1] for s in _SLOT.finditer(m[1])} <= present else ""

    text = _SLOT.sub(lambda m: f"\x00{m[1]}\x00" if m[1] in present else "", _GROUP.sub(group, pattern))
    before = ""
    while text != before:  # one removal can expose another ("tee (), navy" → "tee , navy")
        before = text
        for rule, repl in _TIDY:
            text = rule.sub(repl, text)
    return _fix_articles(text)


def _drop_plural_articles(text: str, phrases: Mapping[str, str], plural: frozenset[str]) -> str:
    """No article before a run of slot phrases that holds a plural noun ("a pale slacks" → "pale slacks")."""

    def fix(m: re.Match[str]) -> str:
        return m[2] if any(phrases.get(name) in plural for name in _MARK.findall(m[2])) else m[0]

    return _RUN.sub(fix, text)


def _fix_articles(text: str) -> str:
    """ "a" / "an" before a literal word, once the left-out words around it are gone."""
    return re.sub(r"\b(a|an) (?=([a-z]))", lambda m: "an " if m[2] in _VOWEL else "a ", text)


def _assemble(text: str, phrases: Mapping[str, str], fill: Mapping[str, str], plural: frozenset[str]) -> Rendered:
    text = _drop_plural_articles(text, phrases, plural)
    out, spans, pos = "", {}, 0
    for m in _MARK.finditer(text):
        out += text[pos : m.start()]
        word = phrases.get(m[1], fill.get(m[1], ""))
        art = _ARTICLE.search(out)
        if art:  # the article agrees with the phrase that follows it
            new = "" if word in plural else ("an " if word[0] in _VOWEL else "a ")
            out = out[: art.start(1)] + new
        if m[1] in phrases:
            spans[m[1]] = (len(out), len(out) + len(word))
        out += word
        pos = m.end()
    return Rendered(out + text[pos:], spans)


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words (a hyphen joins words: "t-shirt" ∌ "shirt")."""
    return re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", text) is not None


def check_style(style: Style, slots: tuple[Slot, ...], n_values: Mapping[str, int]) -> None:
    """Raise ``ValueError`` unless ``style`` can phrase ``slots`` unambiguously.

    Checks: every pattern names known slots once each and states every ``always`` slot; a group
    holds one droppable, non-noun slot; every word list has phrases for each value of its slot; no
    phrase says two values of a slot; no phrase of one slot occurs inside a phrase of another slot,
    a filler or a pattern's own words.
    """
    by_name = {s.name: s for s in slots}
    for key, lists in style.words.items():
        name = key.split(":")[0]
        if name not in by_name:
            raise ValueError(f"style {style.name}: word list {key!r} names no slot; slots: {', '.join(by_name)}")
        if len(lists) != n_values[name] or not all(lists):
            raise ValueError(f"style {style.name}: {key!r} needs phrases for each of {n_values[name]} values")
    owner: dict[str, tuple[str, int]] = {}
    for key, lists in style.words.items():
        for value, options in enumerate(lists):
            for p in options:
                seen = owner.setdefault(p, (key.split(":")[0], value))
                if seen != (key.split(":")[0], value):
                    raise ValueError(f"style {style.name}: phrase {p!r} says both {seen} and {(key, value)}")
    literal = [_SLOT.sub(" | ", p) for p in style.patterns] + sorted(style.fillers())
    for p, (name, _) in owner.items():
        clash = [q for q, (other, _) in owner.items() if other != name and contains_phrase(q, p)]
        clash += [t for t in literal if contains_phrase(t, p)]
        if clash:
            raise ValueError(f"style {style.name}: phrase {p!r} of slot {name!r} also occurs in {clash[0]!r}")
    for i, pattern in enumerate(style.patterns):
        _check_pattern(style, i, pattern, by_name)


def _check_pattern(style: Style, i: int, pattern: str, by_name: Mapping[str, Slot]) -> None:
    where = f"style {style.name} pattern {i} ({pattern!r})"
    names = [s for s, _ in pattern_slots(pattern)]
    for _, key in pattern_slots(pattern):
        if key not in style.words:
            raise ValueError(f"{where}: no word list {key!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: a slot is stated twice")
    missing = [s.name for s in by_name.values() if s.always and s.name not in names]
    if missing:
        raise ValueError(f"{where}: does not state {missing}")
    if not any(by_name[s].droppable for s in names):
        raise ValueError(f"{where}: states no droppable slot, so it cannot be made incomplete")
    for g in _GROUP.finditer(pattern):
        inner = [m[1] for m in _SLOT.finditer(g[1])]
        if len(inner) != 1 or not by_name[inner[0]].droppable or by_name[inner[0]].noun:
            raise ValueError(f"{where}: group {g[0]!r} must hold exactly one droppable, non-noun slot")
    fillers = [m[1] for m in _SLOT.finditer(pattern) if m[1] in FILLERS]
    if len(set(fillers)) != len(fillers):
        raise ValueError(f"{where}: a filler slot is used twice")
