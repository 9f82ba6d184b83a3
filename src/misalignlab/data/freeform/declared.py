"""The vocabulary a writer's captions use, as a user would declare it (``--schema FILE``).

Users who know what their captions should state declare it in a vocabulary file (format in
:mod:`misalignlab.detect.vocabulary`): slot → value → synonyms. :func:`declared_vocabulary` writes
that document for a free-form writer (a :class:`~misalignlab.data.freeform.plant.Domain` and one
:class:`~misalignlab.data.freeform.phrasing.Style`), listing every phrase the style uses for each
value in any of its forms, so benchmarks can measure the diagnosis "with the declared vocabulary"
beside the vocabulary-free default. Plain data: nothing here reads captions or detects.
"""

from __future__ import annotations

from typing import Any

from misalignlab.data.freeform.phrasing import Style
from misalignlab.data.freeform.plant import Domain


def declared_vocabulary(domain: Domain, style: Style) -> dict[str, Any]:
    """``{"about": ..., "slots": {slot: {value: [synonyms]}}}`` of ``style``'s words.

    A value is named by its first phrase in the slot's plain word list (``slot``, else its first
    form ``slot:form``); the phrases of every form of the slot are its synonyms.
    """
    slots: dict[str, dict[str, list[str]]] = {}
    for slot in domain.slots:
        keys = sorted(
            (k for k in style.words if k == slot.name or k.startswith(f"{slot.name}:")),
            key=lambda k: (k != slot.name, k),
        )
        n_values = len(style.words[keys[0]])
        values: dict[str, list[str]] = {}
        for v in range(n_values):
            phrases = [p for k in keys for p in style.words[k][v]]
            name = phrases[0]
            values[name] = sorted({p for p in phrases if p != name})
        slots[slot.name] = values
    return {"about": f"the words of free-form writer style {style.name!r}", "slots": slots}
