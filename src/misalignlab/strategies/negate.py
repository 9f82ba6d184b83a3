"""Negate strategies: treat misaligned pairs as noise to remove or to down-weight.

- ``baseline``: train on the pairs as they are.
- ``filter``: drop pairs whose detector score is at least ``threshold``, or the ``fraction`` of
  pairs with the highest scores (DataComp-style score filtering, turned around: score = misaligned).
- ``reweight``: per-pair loss weight ``max(floor, 1 − score) ** power``, rescaled to mean 1
  (NPC-style reweighting with a detector's score in place of a memory bank).
- ``robust``: soft correspondence targets ``(1 − α)·I + α·softmax(logits / sharpen)`` built from
  the model's own (detached) similarities, row-wise for image→text and for text→image, so a wrong
  positive is not forced onto the diagonal (in the spirit of NCR/RCL-style robust losses; ideas
  only, no code taken).

Detector scores come from :mod:`misalignlab.detect` (a :class:`DetectionResult` on the training
pairs, cross-fitted); this module computes none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from misalignlab.detect.base import DetectionResult
from misalignlab.models.losses import ContrastiveLoss, row_ce, weighted_mean
from misalignlab.strategies.base import STRATEGIES, PairSet, Strategy, scores_for


@STRATEGIES.register("baseline")
class Baseline(Strategy):
    """No mitigation: the pairs and the loss as given."""

    name = "baseline"
    family = "none"


@STRATEGIES.register("filter")
class Filter(Strategy):
    """Drop the pairs a detector flags: score ≥ ``threshold``, or the top ``fraction`` by score."""

    name = "filter"
    family = "negate"
    needs_scores = True

    def __init__(self, threshold: float | None = None, fraction: float | None = None) -> None:
        if (threshold is None) == (fraction is None):
            raise ValueError("filter takes exactly one of threshold (score cut) or fraction (share dropped)")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"filter threshold must be in [0, 1], got {threshold}")
        if fraction is not None and not 0.0 <= fraction < 1.0:
            raise ValueError(f"filter fraction must be in [0, 1), got {fraction}")
        self.threshold, self.fraction = threshold, fraction

    def flagged(self, score: np.ndarray) -> np.ndarray:
        """Boolean mask (N,) of pairs to drop; ties at the fraction cut go to the lower position."""
        if self.threshold is not None:  # compared in the scores' own precision (0.7 stays 0.7 in float32)
            return score >= np.asarray(self.threshold, dtype=score.dtype)
        n_drop = int(round(self.fraction * len(score)))  # type: ignore[operator]
        order = np.argsort(-score, kind="stable")  # highest score first, earlier pair first on ties
        mask = np.zeros(len(score), dtype=bool)
        mask[order[:n_drop]] = True
        return mask

    def prepare(self, pairs: PairSet, found: DetectionResult | None = None, seed: int = 0) -> PairSet:
        drop = self.flagged(scores_for(pairs, self._need(found)))
        if drop.all():
            raise ValueError("filter would drop every pair; raise the threshold or lower the fraction")
        return pairs.subset(~drop)


@STRATEGIES.register("reweight")
class Reweight(Strategy):
    """Weight each pair's loss by ``max(floor, 1 − score) ** power``, rescaled to mean 1."""

    name = "reweight"
    family = "negate"
    needs_scores = True

    def __init__(self, floor: float = 0.0, power: float = 1.0) -> None:
        if not 0.0 <= floor < 1.0 or power <= 0:
            raise ValueError(f"reweight needs 0 <= floor < 1 and power > 0, got floor={floor}, power={power}")
        self.floor, self.power = floor, power

    def weights(self, score: np.ndarray) -> np.ndarray:
        w = np.maximum(self.floor, 1.0 - np.asarray(score, dtype=np.float64)) ** self.power
        if w.sum() <= 0:
            raise ValueError("reweight: every pair has weight 0 (all scores 1); set a floor > 0")
        return (w * len(w) / w.sum()).astype(np.float32)

    def prepare(self, pairs: PairSet, found: DetectionResult | None = None, seed: int = 0) -> PairSet:
        w = self.weights(scores_for(pairs, self._need(found)))
        if pairs.weights is not None:
            w = w * pairs.weights
        return pairs.with_weights(w)


def soft_correspondence(logits: Tensor, alpha: float, sharpen: float = 1.0) -> Tensor:
    """Targets (…, B, B): ``(1 − α)·I + α·softmax(logits / sharpen)`` per row; rows sum to 1, no gradient."""
    eye = torch.eye(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    return ((1.0 - alpha) * eye + alpha * (logits.detach() / sharpen).softmax(dim=-1)).detach()


@STRATEGIES.register("robust")
class Robust(Strategy):
    """Soft correspondence targets mixing the diagonal with the model's own similarity (see module doc)."""

    name = "robust"
    family = "negate"

    def __init__(self, alpha: float = 0.3, sharpen: float = 1.0) -> None:
        if not 0.0 <= alpha <= 1.0 or sharpen <= 0:
            raise ValueError(f"robust needs 0 <= alpha <= 1 and sharpen > 0, got alpha={alpha}, sharpen={sharpen}")
        self.alpha, self.sharpen = alpha, sharpen

    def training_forward(
        self, img: Tensor, txt: Tensor, batch: Mapping[str, Tensor], loss: ContrastiveLoss
    ) -> tuple[dict[str, Tensor], dict[str, Any]]:
        if not hasattr(loss, "logits"):
            raise ValueError(f"strategy 'robust' needs a loss with logits (clip_cross_modal), got {loss.variant!r}")
        logits = loss.logits(img, txt)  # type: ignore[operator]  # (B, B)
        t_i2t = soft_correspondence(logits, self.alpha, self.sharpen)
        t_t2i = soft_correspondence(logits.transpose(-1, -2), self.alpha, self.sharpen)
        per_pair = 0.5 * (row_ce(logits, t_i2t) + row_ce(logits.transpose(-1, -2), t_t2i))  # (B,)
        diag = t_i2t.diagonal(dim1=-2, dim2=-1).mean()
        return {"contrastive_loss": weighted_mean(per_pair, batch.get("weight"))}, {"target_diag": float(diag)}
