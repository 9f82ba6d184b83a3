"""Calibrate evidence on the data itself, by simulating the misalignment being looked for.

No pair's true type is known, but what a misaligned pair would look like can be made on the data:
an image with another pair's caption (unrelated), a caption with one value word replaced (wrong),
a caption with a slot's words left out (incomplete). For any evidence ``x`` (a similarity, a
margin, a confidence) this gives two samples: ``x`` over the observed pairs, a mixture of aligned
and misaligned ones, and ``x`` over simulated misaligned pairs. Two quantities follow:

- the **share** ``π`` of observed pairs that look misaligned: the smallest ratio of the observed to
  the simulated cumulative distribution over the simulated range (its tail where misaligned pairs
  alone fall; a mixture-proportion estimate, as in positive–unlabelled learning);
- the **odds** ``f_sim(x) / f_obs(x)``: a decreasing (or increasing) isotonic regression of
  "simulated?" on ``x`` over the two samples weighted to equal size, turned into odds.

``π · odds(x)`` is then the posterior probability that a pair with evidence ``x`` is misaligned in
this way (capped at 1). Fits use seeded subsamples (at most ``max_fit`` points a side), so their
cost does not grow with N. Nothing here encodes text or trains a model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

Odds = Callable[[np.ndarray], np.ndarray]


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half (scikit-learn's AUROC); 0.5 if a side is empty."""
    if not len(pos) or not len(neg):
        return 0.5
    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


def mixture_share(observed: np.ndarray, simulated: np.ndarray, high: bool, min_beyond: int = 10) -> float:
    """π: the share of ``observed`` explained by the ``simulated`` distribution (module docstring).

    ``high``: misaligned pairs have high evidence (compare upper tails), else low (lower tails). The
    simulated distribution's most extreme 10 % on the far side is left out (too sparse to divide by),
    and so are cuts with 1 to ``min_beyond − 1`` observed pairs beyond them: the smallest ratio would
    otherwise be read off the noise of a handful of pairs and run low (1,500 pairs with 10 % wrong
    words read as 5.6 % wrong, 9.0 % with the floor). A cut with none beyond stays: it bounds π
    near 0, which is what clean data should read. The floor is at most 1 % of the observed pairs: a
    floor of ``k`` pairs alone can lift π to ``k / (n · tail)``, so on a few hundred pairs (or a model
    that cannot tell the two samples apart) it would type most pairs misaligned.
    """
    if not len(observed) or not len(simulated):
        return 0.0
    obs, sim = np.sort(observed), np.sort(simulated)
    if high:
        grid = np.quantile(sim, np.linspace(0.0, 0.9, 91))
        beyond = len(obs) - np.searchsorted(obs, grid, "left")
        q_sim = 1 - np.searchsorted(sim, grid, "left") / len(sim)
    else:
        grid = np.quantile(sim, np.linspace(0.1, 1.0, 91))
        beyond = np.searchsorted(obs, grid, "right")
        q_sim = np.searchsorted(sim, grid, "right") / len(sim)
    ratio = (beyond / len(obs)) / np.maximum(q_sim, 1e-12)
    usable = (beyond == 0) | (beyond >= min(min_beyond, int(np.ceil(0.01 * len(obs)))))
    return float(np.clip(np.min(ratio[usable]), 0.0, 1.0)) if usable.any() else 0.0


def odds_ratio(observed: np.ndarray, simulated: np.ndarray, high: bool, max_fit: int = 50_000, seed: int = 0) -> Odds:
    """``x ↦ f_simulated(x) / f_observed(x)``, monotone in ``x`` (increasing if ``high``)."""
    rng = np.random.default_rng(seed)
    obs = observed if len(observed) <= max_fit else rng.choice(observed, max_fit, replace=False)
    sim = simulated if len(simulated) <= max_fit else rng.choice(simulated, max_fit, replace=False)
    if not len(obs) or not len(sim):
        return lambda x: np.zeros(len(x))
    x = np.r_[obs, sim].astype(np.float64)
    y = np.r_[np.zeros(len(obs)), np.ones(len(sim))]
    w = np.r_[np.full(len(obs), 0.5 / len(obs)), np.full(len(sim), 0.5 / len(sim))]  # equal weight to each side
    iso = IsotonicRegression(y_min=1e-4, y_max=1 - 1e-4, increasing=high, out_of_bounds="clip").fit(
        x, y, sample_weight=w
    )

    def odds(q: np.ndarray) -> np.ndarray:
        p = iso.predict(np.asarray(q, dtype=np.float64))
        return p / (1.0 - p)

    return odds


def shuffled_similarity(
    image_emb: np.ndarray, text_emb: np.ndarray, idx: np.ndarray, draws: int, rng, image_group: np.ndarray | None = None
) -> np.ndarray:
    """Similarities of images in ``idx`` with captions of other images in ``idx`` (``draws`` shuffles).

    ``image_group``: (N,) code of each pair's image (None: every pair its own). A caption drawn from another
    pair of the same image describes that image, so it is no unrelated pair and stays out of the null.
    """
    own = np.arange(len(idx)) if image_group is None else image_group[idx]
    out = []
    for _ in range(draws):
        perm = rng.permutation(len(idx))
        keep = own[perm] != own
        out.append(np.einsum("nd,nd->n", image_emb[idx[keep]], text_emb[idx[perm[keep]]]))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def unrelated_odds(
    pair_sim: np.ndarray, image_emb: np.ndarray, text_emb: np.ndarray, fold: np.ndarray, draws: int = 5, seed: int = 0,
    image_group: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:  # fmt: skip
    """Per pair ``f_unrelated(sim) / f_observed(sim)`` within its fold (similarities of different folds
    live in different spaces), and the share π of unrelated pairs: ((N,) float64, float). ``image_group``:
    (N,) code of each pair's image, so that the null pairs no caption with its own image."""
    rng = np.random.default_rng(seed)
    odds, share = np.zeros(len(pair_sim)), 0.0
    for k in np.unique(fold):
        idx = np.flatnonzero(fold == k)
        if len(idx) < 3:
            continue
        null = shuffled_similarity(image_emb, text_emb, idx, draws, rng, image_group)
        odds[idx] = odds_ratio(pair_sim[idx], null, high=False, seed=seed)(pair_sim[idx])
        share += mixture_share(pair_sim[idx], null, high=False) * len(idx) / len(pair_sim)
    return odds, share
