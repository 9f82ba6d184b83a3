"""``combined``: one score and one type per pair, from the typing and the member detectors.

The member score is the member detectors' per-fold robust z-scores, ``z = (s − median) /
(1.4826 · MAD)`` clipped to ±``clip``, averaged with the given weights, through a sigmoid.

With typed pairs (:mod:`misalignlab.detect.typed`) the score is ``(1 − ε)·(1 − P(aligned)) + ε·member``:
every kind of misalignment the typing sees raises it, each by its calibrated probability, and the
member score, at weight ``ε = tie_break``, orders the many pairs whose probabilities saturate near 0
or 1 (ε = 0.05 was chosen on the development sets of ``bench/detect_benchmark.py``: it lifts per-type
AUROC by up to 0.03 and moves no pair across the 0.5 of the types). Without typing (no slot in the
captions, or none the model can see) the score is the member score alone. ``info`` says which was used.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from misalignlab.detect.base import DETECTORS, DetectionResult, Detector, Evidence, PairView, robust_z, sigmoid
from misalignlab.kinds import Kind

DEFAULT_MEMBERS: Mapping[str, float] = {"similarity": 1.0, "neighbourhood": 1.0, "pair_loss": 1.0}


@DETECTORS.register("combined")
class Combined(Detector):
    """The typing's P(misaligned), or a weighted mean of member z-scores without it (see module docstring)."""

    name = "combined"

    def __init__(self, members: Mapping[str, float] | None = None, clip: float = 20.0, tie_break: float = 0.05) -> None:
        self.members = dict(DEFAULT_MEMBERS if members is None else members)
        unknown = [m for m in self.members if m not in DETECTORS or m == self.name]
        if unknown or not self.members:
            raise ValueError(f"combined members {unknown or '(none)'} invalid; valid: {', '.join(DETECTORS.names())}")
        if not 0.0 <= tie_break < 1.0:
            raise ValueError(f"combined tie_break must lie in [0, 1), got {tie_break}")
        self.clip, self.tie_break = clip, tie_break

    def detect(self, view: PairView, results: Mapping[str, DetectionResult] | None = None) -> DetectionResult:
        """Combine; ``results`` may hold already computed member results (reused, not recomputed)."""
        self.check(view)
        member = self.member_score(view, results)
        info = {"members": ",".join(self.members)}
        if view.typed is None:
            return DetectionResult(self.name, view.pair_id, member, info={"source": "members", **info})
        t = view.typed.typing
        misaligned = np.clip(1.0 - t.probabilities[:, 0], 0.0, 1.0)
        score = ((1.0 - self.tie_break) * misaligned + self.tie_break * member).astype(np.float32)
        info = {"source": "typing", "vocabulary": view.typed.vocabulary, "tie_break": self.tie_break, **info}
        return DetectionResult(self.name, view.pair_id, score, t.kind, typing_evidence(view), info, t.probabilities)

    def member_score(self, view: PairView, results: Mapping[str, DetectionResult] | None = None) -> np.ndarray:
        """Sigmoid of the weighted mean of the members' clipped per-fold robust z-scores: (N,) float32."""
        groups = view.fold_groups()
        total, weight = np.zeros(len(view)), 0.0
        for name, w in self.members.items():
            res = results[name] if results is not None and name in results else DETECTORS.get(name)().detect(view)
            total += w * np.clip(robust_z(res.score, groups), -self.clip, self.clip)
            weight += w
        return sigmoid(total / max(weight, 1e-12)).astype(np.float32)


def typing_evidence(view: PairView) -> tuple[Evidence, ...]:
    """Evidence records of every non-aligned pair: contradicted slots (strongest first), missing slots,
    a better-matching image; each with the phrase written and the value the image shows."""
    assert view.typed is not None
    st, t = view.typed.stated, view.typed.typing
    out: list[Evidence] = []
    for i in np.flatnonzero(t.kind != Kind.ALIGNED):
        top = int(np.argmax(t.contradiction[i]))
        named = [
            s
            for s in np.argsort(-t.contradiction[i])
            if t.contradiction[i, s] > 0.5 or (s == top and t.kind[i] == Kind.WRONG)
        ]
        for s in named:
            seen = st.value_names[s][t.likely[i, s]] if t.likely[i, s] >= 0 else None
            span = (int(st.start[i, s]), int(st.end[i, s]))
            out.append(
                Evidence(
                    int(i), "contradicted", st.slots[s], st.phrase(i, s), seen, None, float(t.contradiction[i, s]), span
                )
            )
        for s in np.flatnonzero(t.missing[i] > 0.5):
            seen = st.value_names[s][t.likely[i, s]] if t.likely[i, s] >= 0 else None
            out.append(Evidence(int(i), "missing", st.slots[s], None, seen, None, float(t.missing[i, s])))
        if t.better_image[i] >= 0:
            out.append(
                Evidence(int(i), "better_match", other=int(t.better_image[i]), strength=float(t.probabilities[i, 3]))
            )
    return tuple(out)
