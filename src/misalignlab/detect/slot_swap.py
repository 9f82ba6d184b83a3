"""``slot_swap``: does changing one attribute word make the caption fit its image better?

For each stated slot the margin ``max_v sim(image, caption[slot := v]) − sim(image, caption)`` is
computed and standardised among the same slot's margins in the fold (robust z, see
:mod:`misalignlab.detect.classify`), so a slot the model cannot see does not dominate. The score is
``sigmoid((max_slot z − slot_z) / temperature)`` ∈ [0, 1]: above ½ when some one-word change fits
the image unusually much better. Captions with no recognised slot score 0. Requires slot evidence (``PairView.slots``); types via
:func:`~misalignlab.detect.classify.classify`.
"""

from __future__ import annotations

import numpy as np

from misalignlab.detect.base import DETECTORS, DetectionResult, Detector, PairView, sigmoid
from misalignlab.detect.classify import TypingCfg, classify


@DETECTORS.register("slot_swap")
class SlotSwap(Detector):
    """Largest single-slot improvement of image–caption similarity (see module docstring)."""

    name = "slot_swap"
    requires = ("image_emb", "text_emb", "slots")

    def __init__(self, temperature: float = 2.0, typing: dict[str, float | int] | None = None) -> None:
        if temperature <= 0:
            raise ValueError(f"slot_swap temperature must be > 0, got {temperature}")
        self.temperature, self.typing_cfg = temperature, TypingCfg(**dict(typing or {}))

    def detect(self, view: PairView) -> DetectionResult:
        self.check(view)
        assert view.slots is not None
        typed = classify(view.slots, view.fold, self.typing_cfg, view.image_emb, view.text_emb)
        z = typed.margin_z
        top = z.max(axis=1) if z.shape[1] else np.full(len(view), -np.inf, dtype=np.float32)
        finite = np.isfinite(top)
        score = np.zeros(len(view), dtype=np.float32)
        score[finite] = sigmoid((top[finite] - self.typing_cfg.slot_z) / self.temperature)
        return DetectionResult(self.name, view.pair_id, score, typed.kind, info={"temperature": self.temperature})
