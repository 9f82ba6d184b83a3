"""Calibrate the type rules on the data itself, by simulating the misalignment being looked for.

Two facts the typing needs differ from one dataset, schema and model to the next, so they are
measured on the pairs at hand rather than fixed as constants:

- **Can the model see a slot?** Slot evidence already holds ``sim(image, caption[slot := v])`` for
  every value ``v``, so the margin the pair *would* have if its caption stated another value ``b``
  is known: ``max_{v≠b} sim(·, v) − sim(·, b)``. Those simulated wrong-word margins are compared
  with the margins of the words actually stated (mostly true): :func:`slot_visibility` is the
  AUROC between the two, per slot and fold. About 0.5 means a wrong word there looks like a right
  one (the model cannot see the slot), so no contradiction of that slot can be trusted.
- **How likely is a pair unrelated?** Pairing each image with the caption of another image of
  the same fold gives the similarity an unrelated pair has (same fold model, so the same space).
  :func:`unrelated_probability` estimates the unrelated share ``π`` as the smallest ratio of the
  observed to the simulated CDF over the simulated distribution's range (the low tail, where
  only unrelated pairs fall; a mixture-proportion estimate) and the density ratio
  ``f_unrelated(s) / f_observed(s)`` by isotonic (decreasing) regression, so
  ``P(unrelated | s) = min(1, π · ratio)``. Captions that leave slots out are systematically
  less similar to their images, so pairs are compared with pairs that leave out as many slots.

Both only read codes and slot evidence; nothing trains or encodes text. Fits use seeded
subsamples (at most ``max_fit`` points per class), so their cost does not grow with N.
"""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from misalignlab.detect.slots import SlotEvidence


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half (scikit-learn's AUROC); 0.5 if a side is empty."""
    if not len(pos) or not len(neg):
        return 0.5
    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


def simulated_margins(swap: np.ndarray, said: np.ndarray) -> np.ndarray:
    """Margins of one slot if each caption stated another value: (n, V) swap sims, (n,) said → (m,) margins."""
    filled = np.where(np.isnan(swap), -np.inf, swap)
    out = []
    for b in range(swap.shape[1]):
        ok = (said >= 0) & (said != b) & np.isfinite(filled[:, b])
        other = filled[ok].copy()
        other[:, b] = -np.inf
        out.append(other.max(axis=1) - filled[ok, b])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def slot_visibility(
    ev: SlotEvidence, margin: np.ndarray, fold: np.ndarray, max_fit: int = 20000, seed: int = 0
) -> np.ndarray:
    """(N, S) float32: per pair, the visibility (AUROC, see module docstring) of each slot in its fold."""
    rng = np.random.default_rng(seed)
    out = np.full(margin.shape, 0.5, dtype=np.float32)
    for k in np.unique(fold):
        for s in range(margin.shape[1]):
            idx = np.flatnonzero((fold == k) & (ev.said[:, s] >= 0))
            if len(idx) < 2:
                continue
            if len(idx) > max_fit:
                idx = np.sort(rng.choice(idx, max_fit, replace=False))
            wrong = simulated_margins(ev.swap_sim[idx, s], ev.said[idx, s].astype(np.int64))
            out[fold == k, s] = auc(wrong, margin[idx, s])
    return out


def _null_similarity(image_emb: np.ndarray, text_emb: np.ndarray, idx: np.ndarray, draws: int, rng) -> np.ndarray:
    """Similarities of images in ``idx`` with captions of other pairs in ``idx`` (``draws`` shuffles)."""
    out = []
    for _ in range(draws):
        perm = rng.permutation(len(idx))
        keep = perm != np.arange(len(idx))
        out.append(np.einsum("nd,nd->n", image_emb[idx[keep]], text_emb[idx[perm[keep]]]))
    return np.concatenate(out)


def _probability(sim: np.ndarray, null: np.ndarray, max_fit: int, rng, query: np.ndarray) -> np.ndarray:
    """P(unrelated | s) at the similarities ``query``, calibrated on one group's ``sim`` (module docstring)."""
    obs, nul = np.sort(sim), np.sort(null)
    grid = np.quantile(nul, np.linspace(0.1, 1.0, 91))  # the simulated range, its sparse 10 % tail left out
    cdf_obs = np.searchsorted(obs, grid, side="right") / len(obs)
    cdf_nul = np.searchsorted(nul, grid, side="right") / len(nul)
    pi = float(np.clip((cdf_obs / cdf_nul).min(), 0.0, 1.0))  # share of unrelated pairs (mixture proportion)
    fit_obs = sim if len(sim) <= max_fit else rng.choice(sim, max_fit, replace=False)
    fit_nul = null if len(null) <= max_fit else rng.choice(null, max_fit, replace=False)
    x = np.r_[fit_obs, fit_nul]
    y = np.r_[np.zeros(len(fit_obs)), np.ones(len(fit_nul))]
    w = np.r_[np.full(len(fit_obs), 0.5 / len(fit_obs)), np.full(len(fit_nul), 0.5 / len(fit_nul))]  # balanced classes
    iso = IsotonicRegression(y_min=1e-6, y_max=1 - 1e-6, increasing=False, out_of_bounds="clip")
    p = iso.fit(x, y, sample_weight=w).predict(query)  # odds p / (1 − p) = f_null / f_observed
    return np.minimum(1.0, pi * p / (1.0 - p)).astype(np.float32)


def unrelated_probability(
    pair_sim: np.ndarray,
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    fold: np.ndarray,
    unstated: np.ndarray,
    draws: int = 5,
    min_group: int = 200,
    max_fit: int = 50000,
    seed: int = 0,
) -> np.ndarray:
    """(N,) float32 P(unrelated | pair similarity), within fold and count of unstated slots (module docstring).

    A (fold, unstated count) group smaller than ``min_group`` pairs is calibrated with its whole fold.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros(len(pair_sim), dtype=np.float32)
    for k in np.unique(fold):
        in_fold = fold == k
        if in_fold.sum() < 3:
            continue
        counts = np.unique(unstated[in_fold])
        own = [c for c in counts if (in_fold & (unstated == c)).sum() >= min_group]
        rest = np.flatnonzero(in_fold & ~np.isin(unstated, own))
        for c in own:
            idx = np.flatnonzero(in_fold & (unstated == c))
            null = _null_similarity(image_emb, text_emb, idx, draws, rng)
            out[idx] = _probability(pair_sim[idx], null, max_fit, rng, pair_sim[idx])
        if len(rest):
            idx = np.flatnonzero(in_fold)
            null = _null_similarity(image_emb, text_emb, idx, draws, rng)
            out[rest] = _probability(pair_sim[idx], null, max_fit, rng, pair_sim[rest])
    return out
