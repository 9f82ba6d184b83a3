"""Misaligned captions made on purpose from the data's own captions, scored with the text tower.

To calibrate what a wrong or an incomplete pair looks like on *this* data, seeded samples of pairs
that state a slot get two edited captions, each encoded by the fold model that scored the pair:

- **swapped**: the slot's phrase replaced by the most used phrase of another of its values (a
  wrong word); its similarity to the image is what a wrong pair's similarity looks like;
- **dropped**: the slot's phrase cut out; its similarity, and how confidently the text-side slot
  model still reads a value from it (:mod:`misalignlab.detect.slot_models`), are what an
  incomplete pair's look like.

At most ``per_fold`` pairs per slot and fold are edited, so the cost does not grow with N.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from misalignlab.detect.slot_models import SlotModels
from misalignlab.detect.stated import Stated
from misalignlab.detect.words import Word, replaced, without


@dataclass(frozen=True, eq=False)
class Simulated:
    """Per slot and fold, evidence of edited captions (empty arrays where a slot was not edited)."""

    swapped_sim: dict[tuple[int, int], np.ndarray]  # (slot, fold) → (m,) similarity with a swapped word
    dropped_sim: dict[tuple[int, int], np.ndarray]  # (slot, fold) → (m,) similarity with the slot cut out
    dropped_conf: dict[tuple[int, int], np.ndarray]  # (slot, fold) → (m,) text-side confidence after the cut


def _commonest_phrase(stated: Stated, s: int) -> list[str]:
    """Per value of slot ``s``, its most used phrase (what a swap writes)."""
    counts = np.bincount(stated.said[stated.said[:, s] >= 0, s], minlength=len(stated.phrases[s]))
    out = []
    for v in range(stated.n_values(s)):
        members = np.flatnonzero(stated.phrase_value[s] == v)
        out.append(stated.phrases[s][members[np.argmax(counts[members])]])
    return out


def simulate(
    stated: Stated, captions: Sequence[str], emb: object, models: SlotModels, slots: Sequence[int],
    per_fold: int = 300, seed: int = 0,
) -> Simulated:  # fmt: skip
    """Swap and drop one slot in samples of captions (module docstring); ``emb`` is a
    :class:`~misalignlab.detect.crossfit.PairEmbeddings` (its fold models encode the edits)."""
    rng = np.random.default_rng(seed)
    value, fold = stated.value, emb.fold  # type: ignore[attr-defined]
    swapped, dropped, conf = {}, {}, {}
    for s in slots:
        common = _commonest_phrase(stated, s)
        for k in np.unique(fold):
            rows = np.flatnonzero((fold == k) & (value[:, s] >= 0))
            if not len(rows) or int(k) not in models.text_models[s]:
                continue
            rows = np.sort(rng.choice(rows, min(per_fold, len(rows)), replace=False))
            spans = [Word(stated.phrase(i, s), int(stated.start[i, s]), int(stated.end[i, s])) for i in rows]
            others = (value[rows, s] + rng.integers(1, stated.n_values(s), len(rows))) % stated.n_values(s)
            texts = [replaced(captions[i], w, common[o]) for i, w, o in zip(rows, spans, others, strict=True)]
            texts += [without(captions[i], w) for i, w in zip(rows, spans, strict=True)]
            codes = emb.embed_texts(int(k), texts)  # type: ignore[attr-defined]  # (2m, D) unit codes
            sims = np.einsum("nd,nd->n", emb.image_emb[np.r_[rows, rows]], codes)  # type: ignore[attr-defined]
            m = len(rows)
            swapped[(s, int(k))], dropped[(s, int(k))] = sims[:m], sims[m:]
            conf[(s, int(k))] = models.text_models[s][int(k)].predict_proba(codes[m:]).max(axis=1)
    return Simulated(swapped, dropped, conf)
