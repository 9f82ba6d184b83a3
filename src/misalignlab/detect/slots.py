"""A caption vocabulary: each slot (``colour``, ``size`` …) maps the phrases that fill it to their value.

:class:`SlotSchema` finds the slots a caption states (:meth:`SlotSchema.parse`: longest phrase first,
so ``ankle boot`` before ``boot``; first occurrence per slot). Where a schema comes from (a
vocabulary file, a built-in one, or inferred from the captions) is :mod:`misalignlab.detect.vocabulary`'s
business; what follows from it is :mod:`misalignlab.detect.stated`'s. Text only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SlotSchema:
    """Slot → {written word or phrase → canonical value}; ``source`` says where the slots came from."""

    words: Mapping[str, Mapping[str, str]]
    source: str = "given"
    _regex: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        owner: dict[str, str] = {}
        for slot, words in self.words.items():
            for w in words:
                if owner.setdefault(w.lower(), slot) != slot:
                    raise ValueError(f"word {w!r} fills two slots: {owner[w.lower()]!r} and {slot!r}")
        phrases = sorted(owner, key=len, reverse=True)  # longest first: "ankle boot" before "boot"
        alt = "|".join(re.escape(p) for p in phrases) or r"(?!x)x"
        object.__setattr__(self, "_regex", re.compile(rf"(?<![a-z0-9-])(?:{alt})(?![a-z0-9-])"))
        object.__setattr__(self, "_owner", owner)

    @property
    def slots(self) -> tuple[str, ...]:
        return tuple(self.words)

    def values(self, slot: str) -> tuple[str, ...]:
        """Canonical values of ``slot`` in first-seen order."""
        return tuple(dict.fromkeys(self.words[slot].values()))

    def parse(self, caption: str) -> dict[str, tuple[int, int, str]]:
        """Slot → (start, end, canonical value) of its first occurrence in ``caption``."""
        low = caption.lower()
        out: dict[str, tuple[int, int, str]] = {}
        assert self._regex is not None
        for m in self._regex.finditer(low):
            slot = self._owner[m.group()]  # type: ignore[attr-defined]
            if slot not in out:
                out[slot] = (m.start(), m.end(), self.words[slot][m.group()])
        return out
