"""Embrace strategies: use misalignment on purpose (the paper's Corollary 4.2 and practical guidance).

- ``augment``: deliberate selection / perturbation bias. For each pair, with probability
  ``omit[f]`` the caption drops factor ``f``'s word, and with probability ``swap[f]`` it states a
  different, uniformly drawn value of ``f`` instead (LaCLIP-style caption rewriting, done once as
  a seeded re-captioned copy). Slots not named are left exactly as they were. Omitting a
  shift-prone nuisance factor keeps it out of the learnt code.
- ``multipositive``: captions of other images that state the same facts (same slot values,
  whatever the template or synonyms) are positives too: soft targets spread evenly over the
  same-content pairs of the batch, so no equal-content caption is pushed away as a negative.

Captions are read with the rendered-scene slot vocabulary (:mod:`misalignlab.data.scenes.captions`)
unless a ``vocabulary`` (a :class:`~misalignlab.detect.slots.SlotSchema`: declared in a file, built
in, or inferred from the captions) is given: then its slots are the factors, the phrase a caption
writes for a slot is cut at its character span (or replaced by a phrase of another value), and
"the same facts" means the same value of every slot the vocabulary finds. Text that no slot
covers is never touched, and a caption that states no slot is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import Tensor

from misalignlab.data.scenes.captions import build_caption, caption_slots, parse_caption, written_word
from misalignlab.data.scenes.factors import FACTORS, SEMANTIC, check_factor_names
from misalignlab.detect.base import DetectionResult
from misalignlab.detect.slots import SlotSchema
from misalignlab.models.losses import ContrastiveLoss
from misalignlab.strategies.base import STRATEGIES, PairSet, Strategy

_SPACES = re.compile(r"\s+")
_LOOSE_PUNCT = re.compile(r"\s+([,.;:!?])")  # a cut phrase leaves "a dress , on" behind
_EMPTY_LIST = re.compile(r"([,;:])(\s*[,;:])+")  # … or "red, , small"


def _probabilities(
    spec: Mapping[str, float] | None, setting: str, vocabulary: SlotSchema | None = None
) -> dict[str, float]:
    out = {str(k): float(v) for k, v in dict(spec or {}).items()}
    if vocabulary is None:
        check_factor_names(out, setting, SEMANTIC)
    else:
        unknown = sorted(set(out) - set(vocabulary.slots))
        if unknown:
            raise ValueError(f"{setting}: {unknown} not slots of the vocabulary; valid: {', '.join(vocabulary.slots)}")
    for name, p in out.items():
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{setting}[{name}] = {p} is not a probability in [0, 1]")
    return out


def rewrite_caption(
    caption: str, drop: Sequence[str] = (), replace: Mapping[str, str] | None = None, template: int | None = None
) -> str:
    """``caption`` without the words of factors ``drop`` and with ``replace`` (factor → value word).

    With ``template`` known the caption is rebuilt from its slot words (exact phrasing, e.g. the
    whole "on a grey belt" piece goes); otherwise the slot word is cut or substituted in place.
    Other slots keep their written word (synonyms included).
    """
    replace = dict(replace or {})
    spans = caption_slots(caption)
    if template is not None:
        words = {f: caption[a:b] for f, (a, b) in spans.items() if f not in drop}
        words |= {f: w for f, w in replace.items() if f in words}
        return build_caption(words, int(template)).text
    edits = sorted(
        ((a, b, "" if f in drop else replace[f]) for f, (a, b) in spans.items() if f in drop or f in replace),
        reverse=True,
    )
    return _splice(caption, edits)


def _splice(caption: str, edits: Sequence[tuple[int, int, str]], punctuation: bool = False) -> str:
    """``caption`` with each span ``[a, b)`` replaced by its text (spans disjoint, applied last first).

    Runs of spaces collapse; with ``punctuation`` (free text) the commas and spaces a cut leaves
    dangling go too. The rendered scenes' templates keep their own spacing (``belt : a``).
    """
    for a, b, word in sorted(edits, reverse=True):
        caption = caption[:a] + word + caption[b:]
    caption = _SPACES.sub(" ", caption)
    if punctuation:
        caption = _EMPTY_LIST.sub(r"\1", _LOOSE_PUNCT.sub(r"\1", caption)).strip(" ,;:")
    return caption.strip()


def rewrite_with_vocabulary(
    caption: str, vocabulary: SlotSchema, drop: Sequence[str] = (), replace: Mapping[str, str] | None = None
) -> str:
    """``caption`` without the phrases ``vocabulary`` finds for slots ``drop`` and with ``replace`` (slot →
    phrase) written in place of the stated phrase; slots the caption does not state are left alone."""
    replace = dict(replace or {})
    spans = vocabulary.parse(caption)
    edits = [(a, b, "" if f in drop else replace[f]) for f, (a, b, _) in spans.items() if f in drop or f in replace]
    return _splice(caption, edits, punctuation=True) if edits else caption


@STRATEGIES.register("augment")
class Augment(Strategy):
    """Omit or swap chosen slots with chosen probabilities (see module docstring).

    Parameters
    ----------
    omit, swap : mapping of str to float, optional
        Slot → probability per caption that states it.
    vocabulary : SlotSchema, optional
        The slots and their phrases; None: the rendered-scene vocabulary.
    """

    name = "augment"
    family = "embrace"

    def __init__(
        self,
        omit: Mapping[str, float] | None = None,
        swap: Mapping[str, float] | None = None,
        vocabulary: SlotSchema | None = None,
    ) -> None:
        self.vocabulary = vocabulary
        self.omit = _probabilities(omit, "augment.omit", vocabulary)
        self.swap = _probabilities(swap, "augment.swap", vocabulary)
        both = sorted(set(self.omit) & set(self.swap))
        if both:
            raise ValueError(f"augment: factor(s) {both} are both omitted and swapped; choose one")
        if not self.omit and not self.swap:
            raise ValueError("augment needs omit={factor: p} and/or swap={factor: p}")

    def augment_captions(
        self, captions: Sequence[str], rng: np.random.Generator, template: np.ndarray | None = None
    ) -> list[str]:
        """One rewritten caption per input; decisions drawn per caption and slot from ``rng``."""
        if self.vocabulary is not None:
            return [self._rewrite(cap, self.vocabulary, rng) for cap in captions]
        out = []
        for i, cap in enumerate(captions):
            stated = parse_caption(cap)
            drop = [f for f, p in self.omit.items() if f in stated and rng.random() < p]
            replace = {}
            for f, p in self.swap.items():
                if f in stated and rng.random() < p:
                    code = FACTORS[f].values.index(stated[f])
                    new = (code + rng.integers(1, FACTORS[f].n_values)) % FACTORS[f].n_values
                    replace[f] = written_word(f, int(new))
            keep = not drop and not replace
            tpl = None if template is None else int(template[i])
            out.append(cap if keep else rewrite_caption(cap, drop, replace, tpl))
        return out

    def _rewrite(self, caption: str, vocabulary: SlotSchema, rng: np.random.Generator) -> str:
        stated = vocabulary.parse(caption)
        drop = [f for f, p in self.omit.items() if f in stated and rng.random() < p]
        replace = {}
        for f, p in self.swap.items():
            if f in stated and rng.random() < p:
                values = vocabulary.values(f)
                others = [v for v in values if v != stated[f][2]]
                replace[f] = others[int(rng.integers(len(others)))]  # a value is one of the slot's own phrases
        return rewrite_with_vocabulary(caption, vocabulary, drop, replace) if drop or replace else caption

    def prepare(self, pairs: PairSet, found: DetectionResult | None = None, seed: int = 0) -> PairSet:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0xA06]))
        template = pairs.template if self.vocabulary is None else None  # templates are the scenes' own
        return pairs.with_captions(self.augment_captions(pairs.captions, rng, template))

    def params(self) -> dict[str, Any]:
        return {"omit": self.omit, "swap": self.swap, "vocabulary": _source(self.vocabulary)}


def _source(vocabulary: SlotSchema | None) -> str:
    """Where a strategy's slots come from, for run records."""
    return "scenes (rendered)" if vocabulary is None else vocabulary.source


def content_groups(captions: Sequence[str], vocabulary: SlotSchema | None = None) -> np.ndarray:
    """Group id (N,) per caption: equal ids ⇔ the same slot values stated (order, template, synonyms ignored).

    Slots are read with ``vocabulary`` (None: the rendered-scene vocabulary). A caption with no
    recognised slot forms a group with its exact duplicates only.
    """
    read = parse_caption if vocabulary is None else lambda c: {f: v for f, (_, _, v) in vocabulary.parse(c).items()}
    keys: dict[object, int] = {}
    out = np.empty(len(captions), dtype=np.int64)
    for i, cap in enumerate(captions):
        slots = read(cap)
        key: object = tuple(sorted(slots.items())) if slots else ("<text>", cap)
        out[i] = keys.setdefault(key, len(keys))
    return out


def multipositive_targets(group: Tensor) -> Tensor:
    """Soft targets (B, B): row i spreads evenly over the pairs j with ``group[j] == group[i]``."""
    same = (group.unsqueeze(-1) == group.unsqueeze(-2)).float()  # (B, B), symmetric, diagonal 1
    return same / same.sum(dim=-1, keepdim=True)


@STRATEGIES.register("multipositive")
class MultiPositive(Strategy):
    """Same-content captions are positives: soft targets over same-content pairs (see module docstring).

    ``vocabulary``: the slots that say what a caption states (None: the rendered-scene vocabulary).
    """

    name = "multipositive"
    family = "embrace"

    def __init__(self, vocabulary: SlotSchema | None = None) -> None:
        self.vocabulary = vocabulary

    def batch_extras(self, pairs: PairSet) -> dict[str, np.ndarray]:
        return {"group": content_groups(pairs.captions, self.vocabulary)}

    def params(self) -> dict[str, Any]:
        return {"vocabulary": _source(self.vocabulary)}

    def training_forward(
        self, img: Tensor, txt: Tensor, batch: Mapping[str, Tensor], loss: ContrastiveLoss
    ) -> tuple[dict[str, Tensor], dict[str, Any]]:
        targets = multipositive_targets(batch["group"])
        try:
            value = loss(img, txt, weight=batch.get("weight"), targets=targets)
        except TypeError as err:
            raise ValueError(
                f"strategy 'multipositive' needs a loss taking soft targets, not {loss.variant!r}"
            ) from err
        positives = float((targets > 0).sum(dim=-1).float().mean())
        return {"contrastive_loss": value}, {"positives_per_row": positives}
