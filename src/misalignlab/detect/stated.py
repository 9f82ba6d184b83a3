"""What each caption states, slot by slot, and which stated words mean the same value.

:func:`parse_captions` reads every caption with a :class:`~misalignlab.detect.slots.SlotSchema`
(declared or inferred) into a :class:`Stated`: per pair and slot, the phrase written (its index
among the slot's phrases and its character span) and its value. A declared vocabulary gives the
values (synonyms map to theirs). An inferred one knows words only, so :func:`merge_synonyms` groups
the words of each slot whose images the model cannot tell apart: two words are one value when the
distance between the mean image codes of their pairs is within ``ratio`` times what sampling
noise alone gives (estimated from the codes' spread and the pair counts), averaged over the
cross-fitting folds. ``crimson`` and ``red`` merge; ``red`` and ``pink`` stay apart; the values of a
slot the model cannot see at all merge into one, and such a slot then contradicts nothing.
Nothing here scores a pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from misalignlab.detect.slots import SlotSchema


@dataclass(frozen=True, eq=False)
class Stated:
    """Per pair and slot what the caption states (``-1``: nothing).

    ``phrases[s]`` are slot ``s``'s phrases and ``phrase_value[s]`` (len(phrases[s]),) the value of
    each; ``value_names[s]`` name the values (a declared value, or the most used phrase of a group).
    """

    slots: tuple[str, ...]  # (S,)
    phrases: tuple[tuple[str, ...], ...]  # (S,) phrases of each slot
    phrase_value: tuple[np.ndarray, ...]  # (S,) each (P_s,) int: value index of every phrase
    value_names: tuple[tuple[str, ...], ...]  # (S,) each (V_s,)
    said: np.ndarray  # (N, S) int32: index into phrases[s], -1 where the slot is not stated
    start: np.ndarray  # (N, S) int32: character span of the stated phrase (-1 where none)
    end: np.ndarray  # (N, S) int32

    def __len__(self) -> int:
        return len(self.said)

    @property
    def value(self) -> np.ndarray:
        """(N, S) int32 value index stated, -1 where the slot is not stated."""
        out = np.full(self.said.shape, -1, dtype=np.int32)
        for s, pv in enumerate(self.phrase_value):
            rows = self.said[:, s] >= 0
            out[rows, s] = pv[self.said[rows, s]]
        return out

    def n_values(self, s: int) -> int:
        return len(self.value_names[s])

    def phrase(self, i: int, s: int) -> str:
        """The phrase pair ``i`` writes for slot ``s`` ("" if none)."""
        return self.phrases[s][self.said[i, s]] if self.said[i, s] >= 0 else ""


def parse_captions(schema: SlotSchema, captions: Sequence[str]) -> Stated:
    """Every caption read with ``schema`` (first occurrence of each slot)."""
    slots = schema.slots
    phrases = tuple(tuple(schema.words[s]) for s in slots)
    names = tuple(schema.values(s) for s in slots)
    index = [{p.lower(): j for j, p in enumerate(ps)} for ps in phrases]
    phrase_value = tuple(
        np.array([names[s].index(schema.words[slot][p]) for p in phrases[s]], dtype=np.int32)
        for s, slot in enumerate(slots)
    )
    n, k = len(captions), len(slots)
    said = np.full((n, k), -1, dtype=np.int32)
    start, end = np.full((n, k), -1, dtype=np.int32), np.full((n, k), -1, dtype=np.int32)
    pos = {slot: s for s, slot in enumerate(slots)}
    for i, caption in enumerate(captions):
        for slot, (a, b, _) in schema.parse(caption).items():
            s = pos[slot]
            said[i, s], start[i, s], end[i, s] = index[s][caption[a:b].lower()], a, b
    return Stated(slots, phrases, phrase_value, names, said, start, end)


def merge_synonyms(stated: Stated, image_emb: np.ndarray, fold: np.ndarray, ratio: float = 2.0) -> Stated:
    """``stated`` with each slot's phrases regrouped into the values the images tell apart (module docstring)."""
    values, names = [], []
    for s in range(len(stated.slots)):
        label = _value_groups(stated.said[:, s], len(stated.phrases[s]), image_emb, fold, ratio)
        counts = np.bincount(stated.said[stated.said[:, s] >= 0, s], minlength=len(stated.phrases[s]))
        groups = sorted(set(label), key=lambda g: -counts[label == g].sum())
        renum = {g: j for j, g in enumerate(groups)}
        values.append(np.array([renum[g] for g in label], dtype=np.int32))
        names.append(tuple(stated.phrases[s][int(np.argmax(np.where(label == g, counts, -1)))] for g in groups))
    return replace(stated, phrase_value=tuple(values), value_names=tuple(names))


def _value_groups(said: np.ndarray, n_phrases: int, emb: np.ndarray, fold: np.ndarray, ratio: float) -> np.ndarray:
    """(P,) group label of each phrase: average linkage on centroid distance over noise, cut at ``ratio``."""
    if n_phrases < 2:
        return np.zeros(n_phrases, dtype=np.int64)
    folds = np.unique(fold)
    score = np.zeros((n_phrases, n_phrases))
    for k in folds:
        centre = np.zeros((n_phrases, emb.shape[1]))
        spread, count = np.zeros(n_phrases), np.zeros(n_phrases)
        for j in range(n_phrases):
            rows = emb[(fold == k) & (said == j)]
            count[j] = len(rows)
            if len(rows) >= 2:
                centre[j], spread[j] = rows.mean(axis=0), rows.var(axis=0).sum()
        # the distance two centroids of the same value would show from sampling alone
        noise = np.sqrt(np.add.outer(spread / np.maximum(count, 1), spread / np.maximum(count, 1)))
        gap = np.linalg.norm(centre[:, None] - centre[None, :], axis=-1) / np.maximum(noise, 1e-9)
        rare = count < 2  # too few pairs to place: kept apart from every other phrase
        gap[rare, :] = gap[:, rare] = 1e6
        score += gap / len(folds)
    np.fill_diagonal(score, 0.0)
    return fcluster(linkage(squareform(score, checks=False), method="average"), t=ratio, criterion="distance") - 1
