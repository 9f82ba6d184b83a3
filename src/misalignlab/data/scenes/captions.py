"""Caption templates, slot vocabulary and a slot parser for the rendered scenes.

A template is a sequence of *pieces* (space-separated tokens; ``{factor}`` marks a slot). A
piece is written when it has no slot or when at least one of its slots is stated; unstated
slots inside a written piece are skipped, except ``{shape}``, which falls back to the word
``part``. So every template phrases any set of stated factors, and the template index is the
text-only factor ``m_t``. Each slot word is a factor's value word or, with synonyms on, one of
its synonyms. Value words, synonyms and template words are pairwise distinct, so
:func:`parse_caption` recovers the slots of any caption by word lookup alone.

This module neither samples scenes nor injects misalignment (see ``scenes`` and ``inject``).

Example: ``build_caption({"size": "large", "colour": "red", "shape": "gear", "defect":
"scratched", "pos_y": "top", "pos_x": "left", "background": "grey"}, 0).text`` is
``"a scratched large red gear at the top left on a grey belt"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from misalignlab.data.scenes.factors import FACTORS, SEMANTIC

TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("a", "{defect}", "{size}", "{colour}", "{shape}", "at the {pos_y} {pos_x}", "on a {background} belt"),
    ("on a {background} belt :", "a {size} {colour} {shape}", ", {defect}", ", {pos_y} {pos_x}"),
    ("inspection : {shape}", ", {colour}", ", {size}", ", {defect}", ", at the {pos_y} {pos_x}", ", {background} belt"),
    ("one", "{defect}", "{colour}", "{shape}", "of {size} size", ", {pos_y} {pos_x}", ", on the {background} belt"),
)
FALLBACK = {"shape": "part"}  # word written for an unstated slot that a template cannot skip
_PUNCT = {",", ":"}
_SLOT = re.compile(r"^\{(\w+)\}$")
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Caption:
    """A built caption with the character span of every stated slot.

    Attributes
    ----------
    text : str
        The caption.
    template : int
        Template index (the text-only factor ``m_t``).
    spans : dict of str to (int, int)
        ``text[start:end]`` is the word written for that factor.
    """

    text: str
    template: int
    spans: Mapping[str, tuple[int, int]]


def vocabulary() -> dict[str, dict[str, str]]:
    """Slot vocabulary: factor → {word as written (value word or synonym) → value word}."""
    return {f: {w: v for v in FACTORS[f].values for w in FACTORS[f].words(v)} for f in SEMANTIC}


def _inverse_vocabulary() -> dict[str, tuple[str, str]]:
    inverse: dict[str, tuple[str, str]] = {}
    for factor, words in vocabulary().items():
        for word, value in words.items():
            assert word not in inverse, f"caption word {word!r} is used by two slots"
            inverse[word] = (factor, value)
    return inverse


_INVERSE = _inverse_vocabulary()
TEMPLATE_WORDS = (
    frozenset(t for tpl in TEMPLATES for piece in tpl for t in piece.split() if not _SLOT.match(t) and t not in _PUNCT)
    | frozenset(FALLBACK.values())
    | {"an"}
)
assert not TEMPLATE_WORDS & set(_INVERSE), "a template word doubles as a slot word"


def written_word(factor: str, code: int, choice: int = 0) -> str:
    """The word written for ``factor = code``: its value word (``choice`` 0) or a synonym.

    ``choice`` is taken modulo the number of available words, so any integer is valid.
    """
    f = FACTORS[factor]
    words = f.words(f.values[code])
    return words[choice % len(words)]


def build_caption(words: Mapping[str, str], template: int) -> Caption:
    """Phrase the stated ``words`` (factor → written word) with template ``template``.

    Parameters
    ----------
    words : mapping of str to str
        One entry per stated factor; factors absent here are not mentioned.
    template : int
        Index into :data:`TEMPLATES`.

    Returns
    -------
    Caption
    """
    if not 0 <= template < len(TEMPLATES):
        raise ValueError(f"template must be in [0, {len(TEMPLATES) - 1}], got {template}")
    unknown = sorted(set(words) - set(SEMANTIC))
    if unknown:
        raise ValueError(f"cannot state factor(s) {unknown}; stateable: {', '.join(SEMANTIC)}")
    tokens: list[tuple[str, str | None]] = []  # (token, factor it fills or None)
    for piece in TEMPLATES[template]:
        parts = piece.split()
        slots = [m.group(1) for m in map(_SLOT.match, parts) if m]
        if slots and not any(s in words or s in FALLBACK for s in slots):
            continue
        for tok in parts:
            m = _SLOT.match(tok)
            if not m:
                tokens.append((tok, None))
            elif m.group(1) in words:
                tokens.append((words[m.group(1)], m.group(1)))
            elif m.group(1) in FALLBACK:
                tokens.append((FALLBACK[m.group(1)], None))
    for i in range(len(tokens) - 1):  # "a orange" → "an orange"
        if tokens[i][0] == "a" and tokens[i + 1][0][0] in "aeiou":
            tokens[i] = ("an", None)
    return _join(tokens, template)


def _join(tokens: list[tuple[str, str | None]], template: int) -> Caption:
    text, spans = "", {}
    for tok, factor in tokens:
        if text and tok not in _PUNCT:
            text += " "
        if factor is not None:
            spans[factor] = (len(text), len(text) + len(tok))
        text += tok
    return Caption(text=text, template=template, spans=spans)


def caption_slots(caption: str) -> dict[str, tuple[int, int]]:
    """Character span of each slot word found in ``caption`` (first occurrence per factor)."""
    spans: dict[str, tuple[int, int]] = {}
    for m in _WORD.finditer(caption.lower()):
        hit = _INVERSE.get(m.group())
        if hit is not None and hit[0] not in spans:
            spans[hit[0]] = m.span()
    return spans


def parse_caption(caption: str) -> dict[str, str]:
    """The value word each slot of ``caption`` states (synonyms mapped back), by factor.

    Factors the caption does not mention are absent. Works on any text: words outside the
    slot vocabulary are ignored.
    """
    low = caption.lower()
    return {f: _INVERSE[low[a:b]][1] for f, (a, b) in caption_slots(caption).items()}
