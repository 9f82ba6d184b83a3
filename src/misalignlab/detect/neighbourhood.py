"""``neighbourhood``: does the caption agree with its image's neighbours, and the image with its caption's?

In the spirit of LEMoN: for pair ``i`` take the ``k`` images most similar to image ``i`` and
measure how similar caption ``i`` is to *their* captions (text–text); symmetrically take the ``k``
captions most similar to caption ``i`` and measure how similar image ``i`` is to their images. A
misaligned caption disagrees with what similar images are called, and a mislabelled image looks
unlike images with similar captions. Each agreement is a similarity-weighted mean (softmax over the
neighbours' similarities at temperature ``tau``); the score also mixes in the direct cross-modal
cosine with weight ``direct``:

    s_i = direct · cos(x_i, t_i) + (1 − direct) · (agree_text_i + agree_image_i) / 2
    score_i = (1 − s_i) / 2 ∈ [0, 1]

Neighbours are searched within the pair's fold (codes of different folds live in different
spaces) with the blocked top-k of :mod:`misalignlab.detect.knn`, among at most ``pool`` pairs of
that fold (a seeded sample; exact when the fold is smaller), so memory stays O(block · pool).
When several captions share an image (:attr:`~misalignlab.detect.base.PairView.image_key`), the
other captions of pair ``i``'s image are no neighbours of it: their image is image ``i`` itself and
they describe it, so they would agree with caption ``i`` whatever it says. A pair left with no
neighbour (its image is the only one of its fold) is scored by the direct cosine alone.
"""

from __future__ import annotations

import numpy as np

from misalignlab.detect.base import DETECTORS, DetectionResult, Detector, PairView, cosine_rows
from misalignlab.detect.knn import topk_cosine


def _softmax_weights(sims: np.ndarray, tau: float) -> np.ndarray:
    """Softmax over each row at temperature ``tau``; ``-inf`` (no neighbour) weighs 0, a row of them all 0."""
    top = np.where(np.isfinite(sims[:, :1]), sims[:, :1], 0)  # sims are descending: column 0 is the max
    w = np.exp((sims - top) / tau)  # (Q, k); exp(-inf) = 0
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


@DETECTORS.register("neighbourhood")
class Neighbourhood(Detector):
    """Cross-modal k-nearest-neighbour agreement (see module docstring)."""

    name = "neighbourhood"

    def __init__(self, k: int = 10, tau: float = 0.1, direct: float = 0.5, pool: int = 8192, seed: int = 0) -> None:
        if k < 1 or tau <= 0 or not 0.0 <= direct <= 1.0 or pool < 2:
            raise ValueError(
                f"neighbourhood needs k >= 1, tau > 0, 0 <= direct <= 1, pool >= 2; got {k}, {tau}, {direct}, {pool}"
            )
        self.k, self.tau, self.direct, self.pool, self.seed = k, tau, direct, pool, seed
        self.block = 8192  # queries per block: (block, pool) similarities at a time

    def agreement(self, view: PairView, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(agree_text, agree_image, lonely) for the pairs ``idx`` of one fold, each (n,); ``lonely``
        marks pairs without any neighbour (their agreements are 0)."""
        rng = np.random.default_rng(self.seed)
        pool = idx if len(idx) <= self.pool else np.sort(rng.choice(idx, self.pool, replace=False))
        pos = np.full(len(view), -1, dtype=np.int64)
        pos[pool] = np.arange(len(pool))
        image = None if view.image_key is None else view.image_groups()  # None: only the pair itself is left out
        img, txt = view.image_emb, view.text_emb
        out = [np.empty(len(idx), dtype=np.float32), np.empty(len(idx), dtype=np.float32)]
        lonely = np.zeros(len(idx), dtype=bool)
        for d, (query, other) in enumerate(((img, txt), (txt, img))):  # image neighbours → their captions, and back
            query_pool, other_pool = query[pool], other[pool]  # (P, D) each
            for start in range(0, len(idx), self.block):
                part = idx[start : start + self.block]
                groups = None if image is None else (image[part], image[pool])
                sims, nb = topk_cosine(query[part], query_pool, self.k, self_index=pos[part], groups=groups)  # (b, k)
                w = _softmax_weights(sims, self.tau)  # (b, k)
                # mean over neighbours n of w · <their code in the other modality, my code there>
                dots = np.einsum("bkd,bd->bk", other_pool[nb], other[part])  # (b, k)
                out[d][start : start + len(part)] = (w * dots).sum(axis=1)
                lonely[start : start + len(part)] |= ~np.isfinite(sims[:, 0])
        return out[0], out[1], lonely  # image neighbours' captions vs caption i; caption neighbours' images vs image i

    def detect(self, view: PairView) -> DetectionResult:
        self.check(view)
        s = np.zeros(len(view), dtype=np.float32)
        direct = cosine_rows(view.image_emb, view.text_emb)
        for idx in view.fold_groups():
            if len(idx) < 2:
                s[idx] = direct[idx]
                continue
            agree_text, agree_image, lonely = self.agreement(view, idx)
            s[idx] = self.direct * direct[idx] + (1 - self.direct) * 0.5 * (agree_text + agree_image)
            s[idx[lonely]] = direct[idx[lonely]]
        score = np.clip((1.0 - s) / 2.0, 0.0, 1.0).astype(np.float32)
        info = {"k": self.k, "tau": self.tau, "direct": self.direct, "pool": self.pool}
        return DetectionResult(self.name, view.pair_id, score, info=info)
