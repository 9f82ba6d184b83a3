"""Classify each pair as aligned / incomplete / wrong / unrelated from slot-swap evidence.

Inputs are a :class:`~misalignlab.detect.slots.SlotEvidence` (what each caption states, and the
image's similarity to every single-slot alternative), the pair's fold and, optionally, the pair
codes. Per pair and stated slot, the *margin* is ``max over other values v of sim(image,
caption[slot := v]) − sim(image, caption)``; the slot is *contradicted* when the margin exceeds
``cfg.margin`` and the best ``v`` is the likely right value — provided the margin is also unusual
*for that slot* (its robust z among the fold's margins of the same slot exceeds ``cfg.slot_z``)
and the model can see the slot at all: its *visibility*, measured on the data by simulating wrong
words (:func:`~misalignlab.detect.calibrate.slot_visibility`), is at least ``cfg.min_visibility``.
A usual slot (stated by most captions of the dataset) that the caption leaves out is *missing*.
With codes, ``P(unrelated | similarity)`` comes from pairing images with other images' captions
(:func:`~misalignlab.detect.calibrate.unrelated_probability`). Rules, first match wins:

1. unrelated — at least ``unrelated_slots`` slots contradicted, or ``P(unrelated) >
   cfg.unrelated_p`` (one wrong word lowers the similarity a little, another image's caption a
   lot, down to what random captions reach);
2. wrong — exactly one slot contradicted (named, with the likely right value);
3. incomplete — a usual slot is missing;
4. aligned.

For unrelated pairs the image that matches the caption best (top-1 within the fold) is recorded.
Everything is vectorised over pairs; nothing here trains or encodes text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from misalignlab.detect.base import robust_z
from misalignlab.detect.calibrate import slot_visibility, unrelated_probability
from misalignlab.detect.knn import topk_cosine
from misalignlab.detect.slots import SlotEvidence
from misalignlab.kinds import KINDS, Kind


@dataclass(frozen=True)
class TypingCfg:
    """Thresholds of the type rules (similarities are cosines of unit codes)."""

    margin: float = 0.02
    slot_z: float = 3.0
    unrelated_slots: int = 2
    min_visibility: float = 0.6  # AUROC of simulated wrong words vs stated ones; 0.5 = slot unseen
    unrelated_p: float = 0.5  # P(unrelated | similarity) above this: unrelated (Bayes decision)
    seed: int = 0  # for the subsamples and shuffles of the calibration

    def __post_init__(self) -> None:
        if self.unrelated_slots < 2:
            raise ValueError(
                f"typing.unrelated_slots must be >= 2 (one contradicted slot is 'wrong'), got {self.unrelated_slots}"
            )
        if not 0 < self.unrelated_p < 1 or not 0 <= self.min_visibility <= 1:
            raise ValueError(
                f"typing.unrelated_p must lie in (0, 1) and min_visibility in [0, 1], got {self.unrelated_p}, {self.min_visibility}"
            )


@dataclass(frozen=True, eq=False)
class Typing:
    """Per-pair types and the slot facts behind them."""

    kind: np.ndarray  # (N,) str from KINDS
    margin: np.ndarray  # (N, S) float32; −inf where the slot is unstated
    best_value: np.ndarray  # (N, S) int16: index of the best-matching other value
    contradicted: np.ndarray  # (N, S) bool
    missing: np.ndarray  # (N, S) bool
    margin_z: np.ndarray  # (N, S) float32 robust z of the margin among its slot and fold
    sim_z: np.ndarray  # (N,) float32 robust z of the pair's similarity within its fold
    visibility: np.ndarray  # (N, S) float32 visibility of each slot in the pair's fold
    unrelated_p: np.ndarray  # (N,) float32 P(unrelated | similarity); 0 where no codes were given
    better_image: np.ndarray  # (N,) int64 position of a better-matching image, −1 if none looked up


def slot_margins(ev: SlotEvidence) -> tuple[np.ndarray, np.ndarray]:
    """(margin (N, S) float32, best other value (N, S) int16) of every stated slot."""
    alt = np.where(np.isnan(ev.swap_sim), -np.inf, ev.swap_sim)  # (N, S, V)
    n, s, _ = alt.shape
    said = ev.said.astype(np.int64)
    rows, cols = np.nonzero(said >= 0)
    alt[rows, cols, said[rows, cols]] = -np.inf  # the stated value is not an alternative
    best = alt.argmax(axis=2).astype(np.int16)  # (N, S)
    margin = alt.max(axis=2) - ev.pair_sim[:, None]  # (N, S)
    margin[said < 0] = -np.inf
    return margin.astype(np.float32), best


def classify(
    ev: SlotEvidence,
    fold: np.ndarray,
    cfg: TypingCfg = TypingCfg(),
    image_emb: np.ndarray | None = None,
    text_emb: np.ndarray | None = None,
) -> Typing:
    """Type every pair (see the module docstring); codes, if given, calibrate the unrelated rule and
    find better-matching images (without them only contradicted slots make a pair unrelated)."""
    margin, best = slot_margins(ev)
    groups = [np.flatnonzero(fold == k) for k in np.unique(fold)]
    margin_z = np.full(margin.shape, -np.inf, dtype=np.float32)
    for s in range(margin.shape[1]):
        for idx in groups:
            sel = idx[np.isfinite(margin[idx, s])]
            if sel.size >= 2:
                margin_z[sel, s] = robust_z(margin[sel, s])
    visibility = slot_visibility(ev, margin, fold, seed=cfg.seed)
    contradicted = (margin > cfg.margin) & (margin_z > cfg.slot_z) & (visibility >= cfg.min_visibility)  # (N, S)
    missing = (ev.said < 0) & ev.usual[None, :]  # (N, S)
    sim_z = robust_z(ev.pair_sim, groups)
    n_c = contradicted.sum(axis=1)
    p_unrelated = np.zeros(len(fold), dtype=np.float32)
    if image_emb is not None and text_emb is not None:
        unstated = (ev.said < 0).sum(axis=1)
        p_unrelated = unrelated_probability(ev.pair_sim, image_emb, text_emb, fold, unstated, seed=cfg.seed)
    unrelated = (n_c >= cfg.unrelated_slots) | (p_unrelated > cfg.unrelated_p)
    kind = np.select(
        [unrelated, n_c == 1, missing.any(axis=1)], [Kind.UNRELATED, Kind.WRONG, Kind.INCOMPLETE], default=Kind.ALIGNED
    ).astype(f"<U{max(map(len, KINDS))}")
    better = np.full(len(kind), -1, dtype=np.int64)
    if image_emb is not None and text_emb is not None:
        for idx in groups:
            sel = idx[kind[idx] == Kind.UNRELATED]
            if sel.size and len(idx) > 1:
                pos = np.full(len(kind), -1, dtype=np.int64)
                pos[idx] = np.arange(len(idx))
                _, nb = topk_cosine(text_emb[sel], image_emb[idx], 1, self_index=pos[sel])
                better[sel] = idx[nb[:, 0]]
    return Typing(kind, margin, best, contradicted, missing, margin_z, sim_z, visibility, p_unrelated, better)
