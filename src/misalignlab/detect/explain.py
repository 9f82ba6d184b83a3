"""Human-readable explanations of flagged pairs, and their structured columns, from the typing's evidence.

Examples: ``'red' looks wrong: the image looks 'blue'``; ``leaves out a size word (the image looks
'large'): captions written like it state one``; ``caption matches image 'img_123' better``. Slots
are named by their words (``size``, or ``small/large`` for an inferred one); only content words are
ever quoted (:mod:`misalignlab.detect.words`). Text is plain (not HTML-escaped): reports escape it.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from misalignlab.detect.base import DetectionResult, Evidence
from misalignlab.kinds import KINDS


def _text(e: Evidence, ids: np.ndarray) -> str:
    if e.kind == "contradicted":
        seen = f": the image looks '{e.seen}'" if e.seen and e.seen != e.said else ""
        return f"'{e.said}' looks wrong{seen}"
    if e.kind == "missing":
        seen = f" (the image looks '{e.seen}')" if e.seen else ""
        return f"leaves out a {e.slot} word{seen}: captions written like it state one"
    return f"caption matches image '{ids[e.other]}' better" if e.other is not None else ""


def explanations(result: DetectionResult, ids: np.ndarray, flagged: np.ndarray | None = None) -> np.ndarray:
    """(N,) object array of explanations: empty for aligned pairs unless ``flagged`` (bool (N,)) says
    they score high, in which case the text says the codes are unusually dissimilar."""
    parts: dict[int, list[str]] = defaultdict(list)
    for e in result.evidence:
        parts[e.pair].append(_text(e, ids))
    out = np.full(len(ids), "", dtype=object)
    for i, texts in parts.items():
        kind = result.kind[i] if result.kind is not None else ""
        if kind == "unrelated":  # lead with the better image, then at most three contradictions
            texts = sorted(texts, key=lambda t: not t.startswith("caption matches"))[:4]
        out[i] = "; ".join(t for t in texts if t)
    if flagged is not None:
        for i in np.flatnonzero(flagged & (out == "")):
            out[i] = "image and caption codes are unusually dissimilar (no single word explains it)"
    return out


def one_hot(kind: np.ndarray) -> np.ndarray:
    """(N, 4) float32: probability 1 on each pair's type (for detectors that give no probabilities)."""
    return (np.asarray(kind)[:, None] == np.array(KINDS)[None, :]).astype(np.float32)


def evidence_columns(
    evidence: tuple[Evidence, ...], ids: np.ndarray, captions: list[str] | None = None
) -> dict[str, np.ndarray]:
    """Structured evidence per pair, from its strongest records.

    ``slot``: the slot involved; ``stated``: what the caption says there; ``likely``: what the image
    more likely shows; ``missing``: slots left out (comma-separated); ``better_match``: the id of a pair
    whose image fits the caption better; ``suggested_fix`` (when ``captions`` are given): the caption
    with the contradicted phrase replaced by the likely one. Empty strings where none.
    """
    n = len(ids)
    names = ("slot", "stated", "likely", "missing", "better_match", "suggested_fix")
    cols = {c: np.full(n, "", dtype=object) for c in names}
    for e in evidence:
        if e.kind == "contradicted" and not cols["slot"][e.pair]:
            cols["slot"][e.pair], cols["stated"][e.pair], cols["likely"][e.pair] = (
                e.slot or "",
                e.said or "",
                e.seen or "",
            )
            if captions is not None and e.span is not None and e.seen:
                a, b = e.span
                cols["suggested_fix"][e.pair] = captions[e.pair][:a] + e.seen + captions[e.pair][b:]
        elif e.kind == "missing":
            cols["missing"][e.pair] = ", ".join(filter(None, [cols["missing"][e.pair], e.slot or ""]))
            if not cols["likely"][e.pair]:
                cols["likely"][e.pair] = e.seen or ""
        elif e.kind == "better_match" and e.other is not None and not cols["better_match"][e.pair]:
            cols["better_match"][e.pair] = str(ids[e.other])
    return cols
