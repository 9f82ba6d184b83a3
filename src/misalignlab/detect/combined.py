"""``combined``: one score from several detectors, plus the slot-based type of each pair.

Combination (unsupervised, no labels needed): every member detector's score is turned into a
robust z-score within each fold, ``z = (s − median) / (1.4826 · MAD)``, clipped to ±``clip``; the
combined z is the weighted mean of the members' z plus ``omission_weight`` for each usual slot the
caption leaves out (an omission is certain from parsing, but invisible to similarity); the score
is ``sigmoid(z_combined)``. Members whose requirements the view lacks (``slot_swap`` without slot
evidence) are skipped and named in ``info``. With slot evidence the result carries the type of
every pair from :func:`~misalignlab.detect.classify.classify` and its evidence.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from misalignlab.detect.base import DETECTORS, DetectionResult, Detector, Evidence, PairView, robust_z, sigmoid
from misalignlab.detect.classify import Typing, TypingCfg, classify

DEFAULT_MEMBERS: Mapping[str, float] = {"similarity": 1.0, "neighbourhood": 1.0, "pair_loss": 1.0, "slot_swap": 2.0}


@DETECTORS.register("combined")
class Combined(Detector):
    """Weighted mean of per-fold robust z-scores of member detectors (see module docstring)."""

    name = "combined"

    def __init__(
        self,
        members: Mapping[str, float] | None = None,
        omission_weight: float = 6.0,
        clip: float = 20.0,
        typing: Mapping[str, float | int] | None = None,
    ) -> None:
        self.members = dict(DEFAULT_MEMBERS if members is None else members)
        unknown = [m for m in self.members if m not in DETECTORS or m == self.name]
        if unknown or not self.members:
            raise ValueError(f"combined members {unknown or '(none)'} invalid; valid: {', '.join(DETECTORS.names())}")
        self.omission_weight, self.clip = omission_weight, clip
        self.typing_cfg = TypingCfg(**dict(typing or {}))

    def detect(self, view: PairView, results: Mapping[str, DetectionResult] | None = None) -> DetectionResult:
        """Combine members; ``results`` may hold already computed member results (reused, not recomputed)."""
        self.check(view)
        groups = view.fold_groups()
        total = np.zeros(len(view), dtype=np.float64)
        used, skipped, weight = [], [], 0.0
        for name, w in self.members.items():
            det = DETECTORS.get(name)()
            if any(not view.has(r) for r in det.requires):
                skipped.append(name)
                continue
            res = results[name] if results is not None and name in results else det.detect(view)
            total += w * np.clip(robust_z(res.score, groups), -self.clip, self.clip)
            weight += w
            used.append(name)
        z = total / max(weight, 1e-12)
        kind, evidence, typed = None, (), None
        if view.slots is not None:
            typed = classify(view.slots, view.fold, self.typing_cfg, view.image_emb, view.text_emb)
            z = z + self.omission_weight * typed.missing.sum(axis=1)
            kind, evidence = typed.kind, typing_evidence(typed, view)
        info = {"members": ",".join(used), "skipped": ",".join(skipped), "omission_weight": self.omission_weight}
        return DetectionResult(self.name, view.pair_id, sigmoid(z), kind, evidence, info)


def typing_evidence(typed: Typing, view: PairView) -> tuple[Evidence, ...]:
    """Evidence records of every non-aligned pair, strongest contradiction first within a pair."""
    assert view.slots is not None
    ev = view.slots
    out: list[Evidence] = []
    for i in np.flatnonzero(typed.kind != "aligned"):
        for s in np.argsort(-typed.margin[i]):
            if typed.contradicted[i, s]:
                said, seen = ev.values[s][ev.said[i, s]], ev.values[s][typed.best_value[i, s]]
                out.append(Evidence(int(i), "contradicted", ev.slots[s], said, seen, None, float(typed.margin[i, s])))
        for s in np.flatnonzero(typed.missing[i]):
            out.append(Evidence(int(i), "missing", ev.slots[s]))
        if typed.better_image[i] >= 0:
            out.append(
                Evidence(int(i), "better_match", other=int(typed.better_image[i]), strength=float(typed.sim_z[i]))
            )
    return tuple(out)
