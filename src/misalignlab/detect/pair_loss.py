"""``pair_loss``: each pair's contrastive (InfoNCE) loss under the cross-fitted codes, small-loss style.

Noisy-correspondence methods (NCR, DECL …) split pairs by their training loss: clean pairs are
learnt first and keep a small loss. Here the loss of pair ``i`` is CLIP's symmetric cross entropy
of ``i`` against ``negatives`` other pairs of its fold (a seeded sample, the same for every pair of
a block), at temperature ``tau``:

    loss_i = ½ [CE(x_i → t_i vs t_neg) + CE(t_i → x_i vs x_neg)]

and the score is ``1 − exp(−loss_i)`` ∈ [0, 1] (one minus the geometric mean of the two softmax
probabilities of the right partner). A two-component Gaussian mixture on the losses (as in NCR)
gives the small-loss threshold reported in ``info`` (``clean_share``: the share of pairs it calls
clean); the score itself stays continuous. A pair is never its own negative, nor is another caption
of its image (:attr:`~misalignlab.detect.base.PairView.image_key`): that caption describes the same
image and would count as a confusable rival.
"""

from __future__ import annotations

import numpy as np
from sklearn.mixture import GaussianMixture

from misalignlab.detect.base import DETECTORS, DetectionResult, Detector, PairView, cosine_rows


def _logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


@DETECTORS.register("pair_loss")
class PairLoss(Detector):
    """Per-pair symmetric InfoNCE loss against sampled in-fold negatives (see module docstring)."""

    name = "pair_loss"

    def __init__(self, negatives: int = 255, tau: float = 0.07, seed: int = 0, block: int = 16384) -> None:
        if negatives < 1 or tau <= 0:
            raise ValueError(f"pair_loss needs negatives >= 1 and tau > 0; got {negatives}, {tau}")
        self.negatives, self.tau, self.seed, self.block = negatives, tau, seed, block

    def losses(self, view: PairView) -> np.ndarray:
        """(N,) per-pair loss (natural log units)."""
        rng = np.random.default_rng(self.seed)
        out = np.zeros(len(view), dtype=np.float32)
        pos = cosine_rows(view.image_emb, view.text_emb) / self.tau  # (N,)
        image = view.image_groups()  # (N,) code of each pair's image
        for idx in view.fold_groups():
            if len(idx) < 2:
                continue
            for start in range(0, len(idx), self.block):
                part = idx[start : start + self.block]
                neg = rng.choice(idx, min(self.negatives, len(idx) - 1), replace=False)  # (M,)
                i2t = view.image_emb[part] @ view.text_emb[neg].T / self.tau  # (b, M)
                t2i = view.text_emb[part] @ view.image_emb[neg].T / self.tau  # (b, M)
                same = image[part][:, None] == image[neg][None, :]  # itself, or another caption of its image
                i2t[same] = t2i[same] = -np.inf
                p = pos[part][:, None]
                ce_i = _logsumexp(np.concatenate([p, i2t], axis=1)) - pos[part]
                ce_t = _logsumexp(np.concatenate([p, t2i], axis=1)) - pos[part]
                out[part] = 0.5 * (ce_i + ce_t)
        return out

    def detect(self, view: PairView) -> DetectionResult:
        self.check(view)
        loss = self.losses(view)
        score = (1.0 - np.exp(-loss)).astype(np.float32)
        info: dict[str, float | int | str] = {"negatives": self.negatives, "tau": self.tau}
        if len(loss) >= 10 and np.ptp(loss) > 1e-6:
            sample = loss if len(loss) <= 200_000 else np.random.default_rng(self.seed).choice(loss, 200_000)
            gmm = GaussianMixture(2, random_state=self.seed).fit(sample[:, None].astype(np.float64))
            clean = int(np.argmin(gmm.means_[:, 0]))
            info["clean_share"] = float((gmm.predict(loss[:, None].astype(np.float64)) == clean).mean())
        return DetectionResult(self.name, view.pair_id, np.clip(score, 0, 1), info=info)
