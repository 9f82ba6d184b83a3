"""Embrace strategies: use misalignment on purpose (the paper's Corollary 4.2 and practical guidance).

- ``augment``: deliberate selection / perturbation bias. For each pair, with probability
  ``omit[f]`` the caption drops factor ``f``'s word, and with probability ``swap[f]`` it states a
  different, uniformly drawn value of ``f`` instead (LaCLIP-style caption rewriting, done once as
  a seeded re-captioned copy). Slots not named are left exactly as they were. Omitting a
  shift-prone nuisance factor keeps it out of the learnt code.
- ``multipositive``: captions of other images that state the same facts (same slot values,
  whatever the template or synonyms) are positives too: soft targets spread evenly over the
  same-content pairs of the batch, so no equal-content caption is pushed away as a negative.

Captions are read with the rendered-scene slot vocabulary (:mod:`misalignlab.data.scenes.captions`).
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
from misalignlab.models.losses import ContrastiveLoss
from misalignlab.strategies.base import STRATEGIES, PairSet, Strategy

_SPACES = re.compile(r"\s+")


def _probabilities(spec: Mapping[str, float] | None, setting: str) -> dict[str, float]:
    out = {str(k): float(v) for k, v in dict(spec or {}).items()}
    check_factor_names(out, setting, SEMANTIC)
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
    for a, b, word in edits:
        caption = caption[:a] + word + caption[b:]
    return _SPACES.sub(" ", caption).strip()


@STRATEGIES.register("augment")
class Augment(Strategy):
    """Omit or swap chosen slots with chosen probabilities (see module docstring)."""

    name = "augment"
    family = "embrace"

    def __init__(self, omit: Mapping[str, float] | None = None, swap: Mapping[str, float] | None = None) -> None:
        self.omit = _probabilities(omit, "augment.omit")
        self.swap = _probabilities(swap, "augment.swap")
        both = sorted(set(self.omit) & set(self.swap))
        if both:
            raise ValueError(f"augment: factor(s) {both} are both omitted and swapped; choose one")
        if not self.omit and not self.swap:
            raise ValueError("augment needs omit={factor: p} and/or swap={factor: p}")

    def augment_captions(
        self, captions: Sequence[str], rng: np.random.Generator, template: np.ndarray | None = None
    ) -> list[str]:
        """One rewritten caption per input; decisions drawn per caption and slot from ``rng``."""
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

    def prepare(self, pairs: PairSet, found: DetectionResult | None = None, seed: int = 0) -> PairSet:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0xA06]))
        return pairs.with_captions(self.augment_captions(pairs.captions, rng, pairs.template))


def content_groups(captions: Sequence[str]) -> np.ndarray:
    """Group id (N,) per caption: equal ids ⇔ the same slot values stated (order, template, synonyms ignored).

    A caption with no recognised slot forms a group with its exact duplicates only.
    """
    keys: dict[object, int] = {}
    out = np.empty(len(captions), dtype=np.int64)
    for i, cap in enumerate(captions):
        slots = parse_caption(cap)
        key: object = tuple(sorted(slots.items())) if slots else ("<text>", cap)
        out[i] = keys.setdefault(key, len(keys))
    return out


def multipositive_targets(group: Tensor) -> Tensor:
    """Soft targets (B, B): row i spreads evenly over the pairs j with ``group[j] == group[i]``."""
    same = (group.unsqueeze(-1) == group.unsqueeze(-2)).float()  # (B, B), symmetric, diagonal 1
    return same / same.sum(dim=-1, keepdim=True)


@STRATEGIES.register("multipositive")
class MultiPositive(Strategy):
    """Same-content captions are positives: soft targets over same-content pairs (see module docstring)."""

    name = "multipositive"
    family = "embrace"

    def batch_extras(self, pairs: PairSet) -> dict[str, np.ndarray]:
        return {"group": content_groups(pairs.captions)}

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
