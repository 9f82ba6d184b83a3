"""``similarity``: the CLIP-score baseline — cosine of a pair's cross-fitted image and caption codes.

Score ``(1 − cos) / 2`` lies in [0, 1]; ranking by it is DataComp's CLIP-score filter (keep the
top 30 % = drop the highest scores). It types nothing.
"""

from __future__ import annotations

import numpy as np

from misalignlab.detect.base import DETECTORS, DetectionResult, Detector, PairView, cosine_rows


@DETECTORS.register("similarity")
class Similarity(Detector):
    """Cross-modal cosine similarity of each pair (lower similarity → higher score)."""

    name = "similarity"

    def detect(self, view: PairView) -> DetectionResult:
        self.check(view)
        cos = cosine_rows(view.image_emb, view.text_emb)  # (N,)
        score = np.clip((1.0 - cos) / 2.0, 0.0, 1.0).astype(np.float32)
        return DetectionResult(self.name, view.pair_id, score, info={"mean_cosine": float(cos.mean())})
