"""Which embrace options a pilot can run, and the caption vocabulary they work from.

``augment`` (leave nuisance slots out of the captions) and ``multipositive`` (captions stating the
same facts are positives) need to know what each caption states. Rendered data has its own scene
vocabulary and caption templates. A user's pairs are read with the vocabulary of the pilot's own
diagnosis: the declared one (``--schema FILE``, or a built-in name) or the one inferred from the
captions, with inferred words grouped into the values the images tell apart
(:func:`~misalignlab.detect.stated.merge_synonyms`). When no slot is found, or the task declares no
nuisance slot that the vocabulary knows, an option does not apply: it is not run, and
:attr:`Embrace.not_applicable` says why (the report prints it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from misalignlab.detect.slots import SlotSchema
from misalignlab.detect.typed import TypedPairs
from misalignlab.pilot.config import PilotCfg
from misalignlab.strategies.embrace import content_groups

log = logging.getLogger(__name__)
EMBRACE = ("augment", "multipositive")


@dataclass(frozen=True)
class Embrace:
    """How the embrace options run on this data.

    ``vocabulary``: the slots captions are read with (None: the rendered-scene vocabulary).
    ``omit``: the slots ``augment`` leaves out. ``not_applicable``: option → why it is not run.
    """

    vocabulary: SlotSchema | None = None
    omit: tuple[str, ...] = ()
    not_applicable: dict[str, str] = field(default_factory=dict)


def diagnosis_vocabulary(typed: TypedPairs | None) -> SlotSchema | None:
    """The slots the diagnosis read the captions with, each phrase mapped to the value it settled on; None without slots.

    Declared vocabularies come back as written; inferred words that the images do not tell apart
    share a value, so ``crimson`` and ``red`` state the same fact.
    """
    if typed is None or not typed.stated.slots:
        return None
    st = typed.stated
    words = {
        slot: {phrase: st.value_names[s][int(st.phrase_value[s][j])] for j, phrase in enumerate(st.phrases[s])}
        for s, slot in enumerate(st.slots)
    }
    return SlotSchema(words, source=typed.vocabulary)


def match_slots(vocabulary: SlotSchema, names: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(slots, unmatched names): each name is a slot's name, or one of its phrases or values.

    Inferred slots are named after their words (``red/blue/…``), which a user cannot know in
    advance, so a word of the slot names it as well.
    """
    found: list[str] = []
    unmatched: list[str] = []
    for name in names:
        key = name.strip().lower()
        slot = next(
            (
                s
                for s in vocabulary.slots
                if key == s.lower() or key in vocabulary.words[s] or key in vocabulary.values(s)
            ),
            None,
        )
        if slot is None:
            unmatched.append(name)
        elif slot not in found:
            found.append(slot)
    return tuple(found), tuple(unmatched)


def rendered_embrace(cfg: PilotCfg) -> Embrace:
    """Rendered scenes: their own vocabulary; ``augment`` applies when the task names nuisance factors."""
    wanted = [a for a in cfg.adapt if a in EMBRACE]
    skip = {}
    if "augment" in wanted and not cfg.task.nuisance:
        skip["augment"] = "the task names no nuisance factor to leave out of the captions (task file: nuisance)"
    return Embrace(None, tuple(cfg.task.nuisance), skip)


def user_embrace(cfg: PilotCfg, captions: Sequence[str], typed: TypedPairs | None) -> Embrace:
    """A user's pairs: the diagnosis's vocabulary, or the reasons the embrace options cannot run without one."""
    wanted = [a for a in cfg.adapt if a in EMBRACE]
    vocabulary = diagnosis_vocabulary(typed)
    if vocabulary is None:
        why = (
            "--schema none reads no slots"
            if cfg.schema == "none"
            else f"no slot was found in the captions (vocabulary: {cfg.schema})"
        )
        return Embrace(None, (), {a: f"no caption slots: {why}" for a in wanted})
    skip: dict[str, str] = {}
    omit: tuple[str, ...] = ()
    stated = {slot for c in captions for slot in vocabulary.parse(c)} if wanted else set()
    if "augment" in wanted:
        omit, unmatched = match_slots(vocabulary, cfg.task.nuisance)
        omit = tuple(s for s in omit if s in stated)
        if omit and unmatched:
            log.warning("task.nuisance %s: not slots of the vocabulary (its slots: %s)", unmatched, vocabulary.slots)
        if not cfg.task.nuisance:
            skip["augment"] = "the task names no nuisance slot to leave out of the captions (task file: nuisance)"
        elif not omit:
            skip["augment"] = f"no caption states the nuisance {', '.join(cfg.task.nuisance)}" + (
                f" (not slots of the vocabulary; its slots: {', '.join(vocabulary.slots)})" if unmatched else ""
            )
    if "multipositive" in wanted:
        groups = content_groups(captions, vocabulary)
        if len(np.unique(groups)) == len(groups):
            skip["multipositive"] = "no two captions state the same slot values, so no pair has a second positive"
    return Embrace(vocabulary, omit, skip)
