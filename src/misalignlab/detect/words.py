"""The words of a caption that can carry a fact about its image, and the rest of it (its wording).

A caption is split into lower-cased word tokens with their character spans (hyphenated and
apostrophised words stay whole: ``ash-grey``, ``there's``). *Content words* are those that may
name something in the image; function words (:data:`FUNCTION_WORDS`: articles, prepositions,
pronouns, auxiliaries, conjunctions, negations …), numbers and one-letter tokens never are, so they
are never named as the contradicted or missing part of a caption. Everything of a caption that is
not a fact about its image, its *wording* (template words, filler, punctuation), is what
:func:`wording` returns once the fact words are known. Pure text functions: no model here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*", re.UNICODE)
PUNCT = re.compile(r"[^\w\s]")
FUNCTION_WORDS = frozenset(
    """
    a an the this that these those some any each every all both either neither another other such
    and or but nor so yet if then than because while although though unless until whether
    of in on at to for from by with without within into onto upon over under above below across along
    around about among between through throughout towards toward near beside besides behind beyond
    against during before after since via per off up down out
    is are was were be been being am has have had having do does did doing can could shall should will
    would may might must 's
    i me my mine we us our ours you your yours he him his she her hers it its they them their theirs
    there here where when what which who whom whose why how
    not no yes very too also just only still again even more most less least much many few
    as like one ones
    """.split()
)


@dataclass(frozen=True)
class Word:
    """A word token: its lower-cased text and where it stands in the caption (``caption[start:end]``)."""

    text: str
    start: int
    end: int


def words(caption: str) -> list[Word]:
    """Every word token of ``caption``, lower-cased, in order."""
    return [Word(m.group().lower(), m.start(), m.end()) for m in WORD.finditer(caption)]


def is_content(word: str) -> bool:
    """Whether ``word`` may name a fact about an image (not a function word, a number or a single letter)."""
    return len(word) > 1 and word not in FUNCTION_WORDS and not any(ch.isdigit() for ch in word)


def content_words(caption: str) -> list[Word]:
    """The content words of ``caption`` (see the module docstring), in order."""
    return [w for w in words(caption) if is_content(w.text)]


def wording(caption: str, facts: Collection[str]) -> Iterator[str]:
    """The caption's wording: its tokens and punctuation, each word of ``facts`` replaced by ``<fact>``."""
    pos = 0
    for w in words(caption):
        yield from PUNCT.findall(caption[pos : w.start])
        yield "<fact>" if w.text in facts else w.text
        pos = w.end
    yield from PUNCT.findall(caption[pos:])


def without(caption: str, word: Word) -> str:
    """``caption`` with ``word`` cut out and the spaces and separators around it tidied."""
    left, right = caption[: word.start].rstrip(), caption[word.end :].lstrip()
    if left.endswith((",", ";", ":", "-", "—", "(")) and right.startswith((",", ";", ")", ".")):
        right = right[1:].lstrip()
    return f"{left} {right}".strip() if left and right and right[0] not in ",.;:)" else (left + right).strip()


def replaced(caption: str, word: Word, by: str) -> str:
    """``caption`` with ``word`` replaced by ``by``."""
    return caption[: word.start] + by + caption[word.end :]
