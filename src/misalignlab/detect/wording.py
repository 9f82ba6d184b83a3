"""How captions written like this one describe their images: the local norm an incomplete caption breaks.

Captions leave out most words, and a dataset mixes ways of writing (templates, operators,
sources), some of which never state a slot. So a missing slot is judged against the caption's
*wording peers*: the ``k`` captions whose wording (:func:`misalignlab.detect.words.wording`: the
caption with every slot word replaced by a marker, so ``small red gear at the top`` and ``large
blue nut at the top`` read the same) is most alike, by cosine of TF-IDF word and word-pair counts
reduced to ``dims`` dimensions. :func:`peer_shares` gives, per pair and slot, the share of its peers
that state the slot: near 1 where captions written this way always state it. Peers are searched
among at most ``pool`` captions (a seeded sample), so memory stays bounded. Text only.
"""

from __future__ import annotations

from collections.abc import Sequence

import warnings

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from misalignlab.detect.knn import topk_cosine
from misalignlab.detect.stated import Stated
from misalignlab.detect.words import wording


def peer_shares(
    captions: Sequence[str], stated: Stated, k: int = 20, dims: int = 64, pool: int = 20_000, seed: int = 0
) -> np.ndarray:
    """(N, S) float32: per pair and slot, the share of its wording peers that state the slot."""
    n = len(captions)
    shares = np.zeros(stated.said.shape, dtype=np.float32)
    if n < 3:
        return shares
    facts = {w for ps in stated.phrases for phrase in ps for w in phrase.lower().split()}
    docs = [" ".join(wording(c, facts)) for c in captions]
    tfidf = TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"\S+", min_df=2, sublinear_tf=True)
    try:
        counts = tfidf.fit_transform(docs)
    except ValueError:  # no token is used twice: no wording to compare
        return shares
    dims = max(1, min(dims, counts.shape[1] - 1, n - 1))
    with warnings.catch_warnings():  # explained-variance ratios of a constant matrix divide by zero; unused
        warnings.simplefilter("ignore", RuntimeWarning)
        z = TruncatedSVD(dims, random_state=seed).fit_transform(counts) if counts.shape[1] > 1 else counts.toarray()
    z = (z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    rng = np.random.default_rng(seed)
    members = np.arange(n) if n <= pool else np.sort(rng.choice(n, pool, replace=False))
    position = np.full(n, -1, dtype=np.int64)
    position[members] = np.arange(len(members))
    _, nb = topk_cosine(z, z[members], min(k, len(members) - 1), self_index=position)  # (N, k) pool positions
    states = stated.said[members] >= 0  # (P, S)
    return states[nb].mean(axis=1).astype(np.float32)
