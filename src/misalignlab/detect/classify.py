"""Type every pair aligned / incomplete / wrong / unrelated, with a probability for each.

Evidence per pair (all cross-fitted, all calibrated on this data by simulating the misalignment,
:mod:`misalignlab.detect.calibrate`):

- its similarity σ, against the similarities of images with other pairs' captions (unrelated) and
  of captions with one value word swapped (wrong, :mod:`misalignlab.detect.simulate`);
- per stated slot the image-side *margin* ``log P(best value | image) − log P(stated value | image)``
  (:mod:`misalignlab.detect.slot_models`), against the margins other values would have had;
- per slot the caption leaves out: the share of its wording peers that state it
  (:mod:`misalignlab.detect.wording`) and how confidently its own code still reads a value (a
  synonym the vocabulary missed), against captions with the slot cut out.

Only slots the model can see (visibility ≥ ``min_visibility``) count. Three steps:

1. **unrelated**: a posterior over *aligned*, *unrelated* (σ looks shuffled and every visible slot
   looks randomly valued, so a slot matches with probability 1/#values) and *wrong at one slot*
   (that slot's margin and σ look swapped), each weighted by its share π and the evidence's odds;
2. **wrong**, among the pairs not likely unrelated: per slot ``π · odds(margin)`` re-calibrated on
   those pairs; the most contradicted slot is named with its likely value;
3. **incomplete**: a visible slot left out that at least ``peer_share`` of the wording peers state
   and that the caption's own code does not read (confidence at most the ``dropped_quantile`` of
   captions with the slot cut out); its probability is the peer share.

Types follow the precedence unrelated > wrong > incomplete > aligned at probability ½, and
``probabilities`` are P(aligned, incomplete, wrong, unrelated) in that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from misalignlab.detect.calibrate import mixture_share, odds_ratio, unrelated_odds
from misalignlab.detect.knn import topk_cosine
from misalignlab.detect.simulate import Simulated
from misalignlab.detect.slot_models import SlotModels, swapped_margins
from misalignlab.detect.stated import Stated
from misalignlab.kinds import KINDS, Kind


@dataclass(frozen=True)
class TypingCfg:
    """Thresholds of the typing (each a probability, a share or an AUROC, not a raw score)."""

    min_visibility: float = 0.6  # AUROC of simulated wrong words against stated ones; 0.5 = slot unseen
    peer_share: float = 0.9  # a slot left out is missing when at least this share of wording peers state it
    dropped_quantile: float = 0.95  # … and its code reads the slot no better than this quantile of cut captions
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.5 <= self.min_visibility <= 1 or not 0 < self.peer_share <= 1 or not 0 < self.dropped_quantile <= 1:
            raise ValueError(
                f"typing needs 0.5 <= min_visibility <= 1 and peer_share, dropped_quantile in (0, 1]: {self}"
            )


@dataclass(frozen=True, eq=False)
class Typing:
    """Per-pair types, probabilities and the slot facts behind them."""

    kind: np.ndarray  # (N,) str from KINDS
    probabilities: np.ndarray  # (N, 4) float32 in KINDS order
    contradiction: np.ndarray  # (N, S) float32 P(slot s is stated wrongly), 0 where unseen or unstated
    missing: np.ndarray  # (N, S) float32 P(slot s is left out), 0 where not a candidate
    likely: np.ndarray  # (N, S) int32 the value the image-side model finds most likely (-1: no model)
    better_image: np.ndarray  # (N,) int64 position of a better-matching image for unrelated pairs, −1 otherwise
    visibility: np.ndarray  # (S,) float32
    shares: dict[str, float]  # the estimated share of each misaligned type (mixture proportions)


def classify(
    stated: Stated, models: SlotModels, simulated: Simulated, shares: np.ndarray, pair_sim: np.ndarray,
    image_emb: np.ndarray, text_emb: np.ndarray, fold: np.ndarray, cfg: TypingCfg = TypingCfg(),
    image_group: np.ndarray | None = None,
) -> Typing:  # fmt: skip
    """Type every pair (see the module docstring). ``image_group``: (N,) code of each pair's image (None: every
    pair its own), so that neither the unrelated null nor a better match pairs a caption with its own image."""
    seen = [
        s for s in range(len(stated.slots)) if models.logp[s] is not None and models.visibility[s] >= cfg.min_visibility
    ]
    value = stated.value
    margin = {s: models.margin(s, value[:, s]) for s in seen}
    swapped = {  # the margins the same pairs would have had with a wrong word: what ``margin`` is calibrated against
        s: swapped_margins(models.evidence(s), value[:, s], np.random.default_rng(cfg.seed + s)) for s in seen
    }
    u_odds, u_share = unrelated_odds(pair_sim, image_emb, text_emb, fold, seed=cfg.seed, image_group=image_group)
    p_u = _unrelated(stated, margin, swapped, simulated, pair_sim, fold, u_odds, u_share, seen)
    contradiction = np.zeros(stated.said.shape, dtype=np.float32)
    for s in seen:  # wrong: calibrated among the pairs not likely unrelated
        rows = np.flatnonzero(np.isfinite(margin[s]) & (p_u < 0.5))
        odds = odds_ratio(margin[s][rows], swapped[s][rows], high=True, seed=cfg.seed)
        share = mixture_share(margin[s][rows], swapped[s][rows], high=True)
        have = np.isfinite(margin[s])
        weight = share * odds(margin[s][have]) * np.exp(_swap_sim_log_odds(simulated, s, pair_sim, fold)[have])
        contradiction[have, s] = np.minimum(1.0, weight)
    missing = _missing(stated, models, simulated, shares, seen, cfg)
    p_w = 1.0 - np.prod(1.0 - contradiction, axis=1)
    p_i = 1.0 - np.prod(1.0 - missing, axis=1)
    probs = np.stack([(1 - p_u) * (1 - p_w) * (1 - p_i), (1 - p_u) * (1 - p_w) * p_i, (1 - p_u) * p_w, p_u], axis=1)
    kind = np.select(
        [p_u > 0.5, p_w > 0.5, p_i > 0.5], [Kind.UNRELATED, Kind.WRONG, Kind.INCOMPLETE], default=Kind.ALIGNED
    ).astype(f"<U{max(map(len, KINDS))}")
    likely = np.full(stated.said.shape, -1, dtype=np.int32)
    for s in range(len(stated.slots)):
        ev = models.evidence(s)
        if ev is not None:  # the value the margins compare against, so a flagged word never "should be" itself
            have = np.isfinite(ev).all(axis=1)
            likely[have, s] = np.argmax(ev[have], axis=1)
    rates = {k: float(probs[:, j].mean()) for j, k in enumerate(KINDS)}
    better = _better_images(kind, image_emb, text_emb, fold, image_group, seed=cfg.seed)
    return Typing(kind, probs.astype(np.float32), contradiction, missing, likely, better, models.visibility, rates)


def _unrelated(
    stated: Stated, margin: dict, swapped: dict, simulated: Simulated, pair_sim: np.ndarray, fold: np.ndarray,
    u_odds: np.ndarray, u_share: float, seen: Sequence[int],
) -> np.ndarray:  # fmt: skip
    """(N,) P(unrelated) from a posterior over aligned / unrelated / wrong at one slot (module docstring)."""
    first = np.minimum(1.0, u_share * u_odds)  # similarity alone: keeps likely-unrelated pairs out of the slot fits
    log_u = np.log(max(u_share, 1e-6)) + np.log(np.maximum(u_odds, 1e-12))
    log_w, prior_w = [], 0.0
    for s in seen:
        rows = np.flatnonzero(np.isfinite(margin[s]))
        keep = rows[first[rows] < 0.5]
        odds = odds_ratio(margin[s][keep], swapped[s][keep], high=True)(margin[s][rows])
        share = mixture_share(margin[s][keep], swapped[s][keep], high=True)
        match = 1.0 / stated.n_values(s)  # a random caption states the image's value with about this chance
        log_u[rows] += np.log((1 - match) * odds + match)
        w = np.full(len(pair_sim), -np.inf)
        w[rows] = (
            np.log(max(share, 1e-6))
            + np.log(np.maximum(odds, 1e-12))
            + _swap_sim_log_odds(simulated, s, pair_sim, fold)[rows]
        )
        log_w.append(w)
        prior_w += share
    log_a = np.full(len(pair_sim), np.log(max(1.0 - u_share - prior_w, 0.05)))
    stack = np.stack([log_a, log_u, *log_w], axis=1)  # (N, 2 + |seen|)
    top = stack.max(axis=1, keepdims=True)
    weights = np.exp(stack - top)
    return (weights[:, 1] / weights.sum(axis=1)).astype(np.float64)


def _swap_sim_log_odds(simulated: Simulated, s: int, pair_sim: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """(N,) log f_swapped(σ) / f_observed(σ) of slot ``s``, fold by fold (0 where nothing was simulated)."""
    out = np.zeros(len(pair_sim))
    for k in np.unique(fold):
        sims = simulated.swapped_sim.get((s, int(k)))
        rows = np.flatnonzero(fold == k)
        if sims is not None and len(sims) >= 10:
            out[rows] = np.log(np.maximum(odds_ratio(pair_sim[rows], sims, high=False)(pair_sim[rows]), 1e-12))
    return out


def _missing(
    stated: Stated, models: SlotModels, simulated: Simulated, shares: np.ndarray, seen: Sequence[int], cfg: TypingCfg
) -> np.ndarray:
    """(N, S) P(slot left out): the peer share, where the slot is seen, usual among peers and not read."""
    out = np.zeros(stated.said.shape, dtype=np.float32)
    for s in seen:
        cut = [c for (slot, _), c in simulated.dropped_conf.items() if slot == s]
        conf = models.text_conf[s]
        if not cut or conf is None:
            continue
        ceiling = float(np.quantile(np.concatenate(cut), cfg.dropped_quantile))
        rows = (stated.said[:, s] < 0) & (shares[:, s] >= cfg.peer_share) & (np.nan_to_num(conf, nan=1.0) <= ceiling)
        out[rows, s] = shares[rows, s]
    return out


def _better_images(
    kind: np.ndarray,
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    fold: np.ndarray,
    image_group: np.ndarray | None = None,
    pool: int = 50_000,
    seed: int = 0,
) -> np.ndarray:
    """For unrelated pairs, a pair of the same fold whose image matches the caption best (top-1), −1
    elsewhere. Never the pair's own image: with ``image_group`` codes (captions sharing an image), no pair of it.

    The search runs over at most ``pool`` images of the fold (a seeded sample beyond that), so its
    cost grows linearly with N rather than as N²: the better match is then the best among those.
    """
    better = np.full(len(kind), -1, dtype=np.int64)
    rng = np.random.default_rng(seed)
    for k in np.unique(fold):
        in_fold = np.flatnonzero(fold == k)
        sel = in_fold[kind[in_fold] == Kind.UNRELATED]
        idx = in_fold if len(in_fold) <= pool else np.sort(rng.choice(in_fold, pool, replace=False))
        if sel.size and len(idx) > 1:
            pos = np.full(len(kind), -1, dtype=np.int64)
            pos[idx] = np.arange(len(idx))
            groups = None if image_group is None else (image_group[sel], image_group[idx])
            sims, nb = topk_cosine(text_emb[sel], image_emb[idx], 1, self_index=pos[sel], groups=groups)
            found = np.isfinite(sims[:, 0])  # false where every image of the fold is the pair's own
            better[sel[found]] = idx[nb[found, 0]]
    return better
