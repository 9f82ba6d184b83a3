"""A test backend that sees exactly what captions and images state: typing checked without training.

Every (slot, value) of the free-form Fashion captions gets a random direction; an image's code is
the sum of its true values' directions, a caption's code the sum of the directions of the value
phrases it contains (longest phrase first), each plus a little noise. So a wrong word really points
away from the image, a dropped word really leaves its direction out, and edited captions
(:mod:`misalignlab.detect.simulate`) are encoded the way the data's captions are.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd

from misalignlab.data.freeform.fashion import fashion_freeform_captions
from misalignlab.data.freeform.fashion_words import WORDS_A
from misalignlab.data.freeform.plant import FreeformCfg
from misalignlab.data.loaders.fashion_mnist import AttributeThresholds, FashionPairs
from misalignlab.detect.backends import unit
from misalignlab.detect.crossfit import PairEmbeddings, fold_assignment

SLOTS = ("class", "tone", "size")
DIM = 48


class OracleBackend:
    """Embeds texts by the value phrases they contain (see the module docstring)."""

    name = "oracle"
    crossfit = True
    can_embed_text = True

    def __init__(self, directions: dict[tuple[str, int], np.ndarray], noise: float = 0.15) -> None:
        self.directions, self.noise = directions, noise
        phrases = sorted(
            ((p, s, v) for s in SLOTS for v, ws in enumerate(WORDS_A[s]) for p in ws), key=lambda t: -len(t[0])
        )
        self.pattern = re.compile("|".join(rf"(?<![\w-]){re.escape(p)}(?![\w-])" for p, _, _ in phrases))
        self.owner = {p: (s, v) for p, s, v in phrases}

    def embed_texts(self, fold: int, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            seen = set()
            for m in self.pattern.finditer(text.lower()):
                s, v = self.owner[m.group()]
                if s not in seen:
                    seen.add(s)
                    out[i] += self.directions[(s, v)]
            digest = hashlib.blake2b(text.encode(), digest_size=4).digest()
            out[i] += self.noise * np.random.default_rng(int.from_bytes(digest, "little")).normal(size=DIM)
        return out


def oracle_fashion(
    n: int = 1500, wrong: float = 0.1, incomplete: float = 0.1, unrelated: float = 0.1, seed: int = 0
) -> tuple[PairEmbeddings, list[str], pd.DataFrame]:
    """Free-form Fashion captions (style a) over random classes, tones and sizes, embedded by the oracle."""
    rng = np.random.default_rng(seed)
    labels, tone, size = rng.integers(0, 10, n), rng.integers(0, 2, n), rng.integers(0, 2, n)
    thresholds = AttributeThresholds(tone=np.zeros(10), size=np.zeros(10))
    pairs = FashionPairs(
        np.zeros((n, 2, 2), np.uint8), labels, tone.astype(np.int8), size.astype(np.int8), ("",) * n, thresholds
    )
    captions, truth = fashion_freeform_captions(pairs, FreeformCfg("a", incomplete, wrong, unrelated), seed)
    weight = {"class": 1.0, "tone": 0.8, "size": 0.8}
    directions = {(s, v): weight[s] * unit(rng.normal(size=(1, DIM)))[0] for s in SLOTS for v in range(len(WORDS_A[s]))}
    backend = OracleBackend(directions)
    images = np.stack([sum(directions[(s, int(c[i]))] for s, c in zip(SLOTS, (labels, tone, size))) for i in range(n)])
    images = images + 0.15 * rng.normal(size=images.shape)
    ids = np.array([f"p{i}" for i in range(n)])
    emb = PairEmbeddings(
        ids, unit(images), unit(backend.embed_texts(0, captions)), fold_assignment(list(ids), 2), backend
    )
    return emb, captions, truth
