"""The strategy interface: a strategy prepares the training pairs and/or shapes the objective.

Negate (filter, reweight, robust loss) and embrace (caption augmentation, multi-positive) are
*names* in :data:`STRATEGIES`; the trainer never branches on them (style pattern 8). A strategy

- ``prepare``s a :class:`PairSet` (drop pairs, set per-pair weights, rewrite captions), given the
  detector result on those pairs when it declares ``needs_scores``;
- may add per-pair arrays to every batch (``batch_extras``, e.g. a caption-content group id);
- computes the ``*_loss`` terms of a batch from the image and text codes (``training_forward``).

This module holds the interface, the pair container and the registry; no strategy lives here.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
from torch import Tensor

from misalignlab.detect.base import DetectionResult
from misalignlab.models.losses import ContrastiveLoss
from misalignlab.registry import Registry

FAMILIES = ("negate", "embrace", "none")


@dataclass(frozen=True, eq=False)
class PairSet:
    """Training pairs as a strategy sees them.

    Attributes
    ----------
    images : numpy.ndarray
        ``(N, H, W, 3)`` uint8.
    captions : tuple of str
        ``(N,)`` captions.
    pair_id : numpy.ndarray
        ``(N,)`` unique ids (strings); detector results are matched by them.
    weights : numpy.ndarray, optional
        ``(N,)`` non-negative per-pair loss weights; None = all equal.
    template : numpy.ndarray, optional
        ``(N,)`` caption template index when known (rendered scenes), so captions can be rephrased
        exactly after a slot is dropped; None = edit the caption text in place.
    """

    images: np.ndarray
    captions: tuple[str, ...]
    pair_id: np.ndarray
    weights: np.ndarray | None = None
    template: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.captions)
        object.__setattr__(self, "captions", tuple(self.captions))
        object.__setattr__(self, "pair_id", np.asarray(self.pair_id).astype(str))
        if len(self.images) != n or len(self.pair_id) != n:
            raise ValueError(f"{len(self.images)} images, {n} captions and {len(self.pair_id)} ids differ")
        for name in ("weights", "template"):
            arr = getattr(self, name)
            if arr is not None and np.asarray(arr).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {np.asarray(arr).shape}")

    def __len__(self) -> int:
        return len(self.captions)

    @classmethod
    def build(cls, images: np.ndarray, captions: Sequence[str], template: np.ndarray | None = None) -> PairSet:
        """Pairs with ids ``"0" .. "N-1"``."""
        return cls(images, tuple(captions), np.arange(len(captions)).astype(str), None, template)

    def subset(self, keep: np.ndarray) -> PairSet:
        """The pairs at integer positions (or where a boolean mask is true) ``keep``, in order."""
        idx = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep, dtype=np.int64)
        pick = lambda a: None if a is None else np.asarray(a)[idx]  # noqa: E731
        return PairSet(
            self.images[idx],
            tuple(self.captions[i] for i in idx),
            self.pair_id[idx],
            pick(self.weights),
            pick(self.template),
        )

    def with_weights(self, weights: np.ndarray) -> PairSet:
        return replace(self, weights=np.asarray(weights, dtype=np.float32))

    def with_captions(self, captions: Sequence[str]) -> PairSet:
        return replace(self, captions=tuple(captions))


def scores_for(pairs: PairSet, found: DetectionResult) -> np.ndarray:
    """``found.score`` reordered to ``pairs`` by pair id; every pair must be scored."""
    index = {pid: i for i, pid in enumerate(np.asarray(found.pair_id).astype(str))}
    missing = [pid for pid in pairs.pair_id[:5] if pid not in index]
    if missing or len(set(pairs.pair_id) - set(index)):
        raise ValueError(f"detector {found.detector!r} has no score for pair(s) such as {missing}")
    return np.asarray(found.score)[[index[pid] for pid in pairs.pair_id]]


class Strategy(ABC):
    """Base class. Hyperparameters in ``__init__``; ``prepare`` returns new pairs, mutating nothing."""

    name: ClassVar[str]
    family: ClassVar[str]
    needs_scores: ClassVar[bool] = False

    def prepare(self, pairs: PairSet, found: DetectionResult | None = None, seed: int = 0) -> PairSet:
        """The pairs to train on (default: unchanged)."""
        return pairs

    def batch_extras(self, pairs: PairSet) -> dict[str, np.ndarray]:
        """Per-pair arrays ``(N, ...)`` that every batch carries, indexed like the batch (default none)."""
        return {}

    def training_forward(
        self, img: Tensor, txt: Tensor, batch: Mapping[str, Tensor], loss: ContrastiveLoss
    ) -> tuple[dict[str, Tensor], dict[str, float]]:
        """``*_loss`` terms (summed by the trainer) and scalar logs for codes ``img``, ``txt`` (B, D)."""
        return {"contrastive_loss": loss(img, txt, weight=batch.get("weight"))}, {}

    def params(self) -> dict[str, Any]:
        """Hyperparameters, for run records."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def _need(self, found: DetectionResult | None) -> DetectionResult:
        if found is None:
            raise ValueError(f"strategy {self.name!r} needs detector scores on the training pairs (found=None)")
        return found


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")


def build_strategy(name: str, **kwargs: Any) -> Strategy:
    """Instantiate a registered strategy by name with its keyword arguments."""
    return STRATEGIES.get(name)(**kwargs)
