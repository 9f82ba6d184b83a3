"""Per slot, what the dataset's captions say about images like this one, learnt from the pairs themselves.

For every slot with at least two values, and within every cross-fitting fold (codes of different
folds live in different spaces), two logistic regressions are fitted on the pairs that state the
slot, their stated value as the label:

- **image side** ``P(value | image code)``: out-of-sample for every pair (``cv``-fold cross-fitting
  for the pairs it trains on), so a pair's own, possibly wrong, word never votes for itself. A
  stated value the image side finds unlikely, compared with the slot's most likely value, is a
  contradiction; the most likely value is what the caption should say (confident learning, with
  the slot's words as labels). Both are read on the *evidence* ``log P(value | image) − log
  prior(value)``, the prior being how often the captions state each value: with the posterior, a
  slot whose values are unbalanced (three defects against ``intact``) makes every caption of the
  rare value look contradicted on images the model reads poorly.
- **text side** ``P(value | caption code)``: whether the caption's own code determines the value.
  A caption that leaves the slot's words out but says the same with a word the vocabulary missed
  ("coil" for a spring) still determines it; one that leaves the value out does not.

A slot's *visibility* is the AUROC between the image-side evidence margins of stated values and those the
same pairs would have had with another value (simulated wrong words): about 0.5 means the model
cannot see the slot, and no contradiction of it is trusted. Nothing here encodes text.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from misalignlab.detect.calibrate import auc
from misalignlab.detect.stated import Stated


@dataclass(frozen=True, eq=False)
class SlotModels:
    """Cross-fitted per-slot evidence (``None`` for a slot that is not modelled: one value or too few pairs)."""

    logp: tuple[np.ndarray | None, ...]  # (S,) each (N, V_s) float32 log P(value | image), out of sample
    log_prior: tuple[np.ndarray | None, ...]  # (S,) each (V_s,) float32 log share of the value among stated ones
    text_conf: tuple[np.ndarray | None, ...]  # (S,) each (N,) float32 max_v P(value | caption code)
    text_models: tuple[dict[int, LogisticRegression], ...]  # (S,) fold → the text-side model
    visibility: np.ndarray  # (S,) float32 AUROC; 0.5 where not modelled

    def evidence(self, s: int) -> np.ndarray | None:
        """(N, V_s) log P(value | image) − log prior(value) of slot ``s`` (a likelihood ratio up to a constant)."""
        lp, prior = self.logp[s], self.log_prior[s]
        return None if lp is None or prior is None else lp - prior[None, :]

    def margin(self, s: int, value: np.ndarray) -> np.ndarray:
        """(N,) evidence of the best value − evidence of the stated value of slot ``s``; NaN where nothing is
        stated."""
        return _margins(self.evidence(s), value)


def _margins(ev: np.ndarray | None, value: np.ndarray) -> np.ndarray:
    out = np.full(len(value), np.nan, dtype=np.float32)
    if ev is None:
        return out
    rows = np.flatnonzero(value >= 0)
    out[rows] = ev[rows].max(axis=1) - ev[rows, value[rows]]
    return out


def value_log_prior(value: np.ndarray, n_values: int) -> np.ndarray:
    """(V,) log share of each value among the stated ones (``value`` < 0: not stated), add-one smoothed."""
    counts = np.bincount(value[value >= 0], minlength=n_values)
    return np.log((counts + 1.0) / (counts.sum() + n_values)).astype(np.float32)


def _fit(x: np.ndarray, y: np.ndarray, seed: int) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(max_iter=1000, random_state=seed).fit(x, y)


def _log_proba(model: LogisticRegression, x: np.ndarray, n_values: int) -> np.ndarray:
    """(n, V) log probabilities over all of the slot's values (a value the fit never saw: log 1e-6)."""
    out = np.full((len(x), n_values), np.log(1e-6), dtype=np.float32)
    out[:, model.classes_] = np.log(np.maximum(model.predict_proba(x), 1e-6))
    return out


def _image_side(x: np.ndarray, y: np.ndarray, rest: np.ndarray, n_values: int, cv: int, seed: int) -> tuple:
    """Out-of-sample log P for the labelled rows (cross-fitted) and for ``rest`` (one fit on all)."""
    labelled = np.zeros((len(y), n_values), dtype=np.float32)
    folds = min(cv, int(np.bincount(y).max()))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed) if folds >= 2 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes with fewer members than folds
        splits = list(splitter.split(x, y)) if splitter is not None else [(np.arange(len(y)),) * 2]
    for train, test in splits:
        if len(np.unique(y[train])) < 2:
            labelled[test] = np.log(1.0 / n_values)
            continue
        labelled[test] = _log_proba(_fit(x[train], y[train], seed), x[test], n_values)
    others = _log_proba(_fit(x, y, seed), rest, n_values) if len(rest) else np.zeros((0, n_values), np.float32)
    return labelled, others


def fit_sample(y: np.ndarray, max_fit: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of about ``max_fit`` of the labelled rows ``y`` to fit on (all of them when there
    are no more): each value gives its share, and at least ``min(its count, 30)``, so no value is lost."""
    if len(y) <= max_fit:
        return np.arange(len(y))
    keep = []
    for v in np.unique(y):
        members = np.flatnonzero(y == v)
        take = max(min(len(members), 30), int(round(len(members) * max_fit / len(y))))
        keep.append(rng.choice(members, take, replace=False))
    return np.sort(np.concatenate(keep))


def fit_slot_models(
    stated: Stated, image_emb: np.ndarray, text_emb: np.ndarray, fold: np.ndarray, cv: int = 5, min_pairs: int = 30,
    seed: int = 0, max_fit: int = 20_000,
) -> SlotModels:  # fmt: skip
    """Fit both sides for every slot and fold (see the module docstring).

    Per slot and fold at most about ``max_fit`` stating pairs are fitted on (a seeded sample that keeps
    every value); the other pairs are scored by the model fitted on that sample, so out of sample
    too. Above it the fits stop growing with N (at 100,000 pairs they were 59 % of the typing)."""
    value = stated.value
    n = len(value)
    logps, priors, confs, texts = [], [], [], []
    vis = np.full(len(stated.slots), 0.5, dtype=np.float32)
    rng, sample_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    for s in range(len(stated.slots)):
        n_values = stated.n_values(s)
        lp, conf, models = np.full((n, n_values), np.nan, np.float32), np.full(n, np.nan, np.float32), {}
        for k in np.unique(fold):
            rows = np.flatnonzero((fold == k) & (value[:, s] >= 0))
            rest = np.flatnonzero((fold == k) & (value[:, s] < 0))
            if n_values < 2 or len(rows) < min_pairs or len(np.unique(value[rows, s])) < 2:
                continue
            fit = rows[fit_sample(value[rows, s], max_fit, sample_rng)]
            held = np.setdiff1d(np.r_[rows, rest], fit)  # scored by the model fitted on ``fit``
            lp[fit], lp[held] = _image_side(image_emb[fit], value[fit, s], image_emb[held], n_values, cv, seed)
            models[int(k)] = _fit(text_emb[fit], value[fit, s], seed)
            conf[np.r_[rows, rest]] = models[int(k)].predict_proba(text_emb[np.r_[rows, rest]]).max(axis=1)
        modelled = bool(models)
        prior = value_log_prior(value[:, s], n_values) if modelled else None
        logps.append(lp if modelled else None)
        priors.append(prior)
        confs.append(conf if modelled else None)
        texts.append(models)
        if modelled:
            vis[s] = _visibility(lp - prior[None, :], value[:, s], rng)
    return SlotModels(tuple(logps), tuple(priors), tuple(confs), tuple(texts), vis)


def swapped_margins(ev: np.ndarray, value: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N,) the margin each pair stating the slot would have had with another, random value stated (a
    simulated wrong word); NaN where nothing is stated or the evidence is missing."""
    rows = np.flatnonzero((value >= 0) & np.isfinite(ev).all(axis=1))
    other = np.full(len(value), -1)
    other[rows] = (value[rows] + rng.integers(1, ev.shape[1], len(rows))) % ev.shape[1]
    return _margins(ev, other)


def _visibility(ev: np.ndarray, value: np.ndarray, rng: np.random.Generator) -> float:
    """AUROC of simulated-wrong margins (another value stated) against the stated values' margins."""
    rows = np.flatnonzero((value >= 0) & np.isfinite(ev).all(axis=1))
    if len(rows) < 2:
        return 0.5
    return auc(swapped_margins(ev, value, rng)[rows], _margins(ev, value)[rows])
