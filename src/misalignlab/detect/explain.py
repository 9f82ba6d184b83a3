"""One-line, human-readable explanations of flagged pairs, from their typing evidence.

Examples: ``colour: caption says 'red', image looks 'blue'``; ``missing: size``;
``caption matches image 'img_123' better``. Text is plain (not HTML-escaped); reports escape it.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from misalignlab.detect.base import DetectionResult, Evidence
from misalignlab.kinds import KINDS


def explanations(result: DetectionResult, ids: np.ndarray, flagged: np.ndarray | None = None) -> np.ndarray:
    """(N,) object array of explanations: empty for aligned pairs unless ``flagged`` (bool (N,)) says
    they score high, in which case the text says the similarity is low."""
    parts: dict[int, list[str]] = defaultdict(list)
    for e in result.evidence:
        if e.kind == "contradicted":
            parts[e.pair].append(f"{e.slot}: caption says '{e.said}', image looks '{e.seen}'")
        elif e.kind == "missing":
            parts[e.pair].append(f"missing: {e.slot}")
        elif e.kind == "better_match" and e.other is not None:
            parts[e.pair].append(f"caption matches image '{ids[e.other]}' better")
    out = np.full(len(ids), "", dtype=object)
    for i, texts in parts.items():
        kind = result.kind[i] if result.kind is not None else ""
        if kind == "unrelated":  # lead with the better image, then at most three contradictions
            texts = sorted(texts, key=lambda t: not t.startswith("caption matches"))[:4]
        out[i] = "; ".join(texts)
    if flagged is not None:
        for i in np.flatnonzero(flagged & (out == "")):
            out[i] = "image and caption codes are unusually dissimilar (no single attribute explains it)"
    return out


def one_hot(kind: np.ndarray) -> np.ndarray:
    """(N, 4) float32: probability 1 on each pair's type (for detectors that give no probabilities)."""
    return (np.asarray(kind)[:, None] == np.array(KINDS)[None, :]).astype(np.float32)


def evidence_columns(evidence: tuple[Evidence, ...], ids: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Structured evidence per pair, from its strongest records.

    ``slot``: the slot (or caption phrase) involved; ``stated``: what the caption says there;
    ``likely``: what the image more likely shows; ``missing``: slots left out (comma-separated);
    ``better_match``: the id of a pair whose image fits the caption better. Empty strings where none.
    """
    cols = {c: np.full(n, "", dtype=object) for c in ("slot", "stated", "likely", "missing", "better_match")}
    for e in evidence:
        if e.kind == "contradicted" and not cols["slot"][e.pair]:
            cols["slot"][e.pair], cols["stated"][e.pair], cols["likely"][e.pair] = (
                e.slot or "",
                e.said or "",
                e.seen or "",
            )
        elif e.kind == "missing":
            cols["missing"][e.pair] = ", ".join(filter(None, [cols["missing"][e.pair], e.slot or ""]))
        elif e.kind == "better_match" and e.other is not None and not cols["better_match"][e.pair]:
            cols["better_match"][e.pair] = str(ids[e.other])
    return cols
