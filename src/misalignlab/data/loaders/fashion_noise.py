"""Plant wrong / incomplete / unrelated captions in Fashion-MNIST pairs, with per-pair truth.

Captions are ``"a <tone> <size> <class>"`` (see :mod:`misalignlab.data.loaders.fashion_mnist`).
Per pair one kind is drawn with the given rates (the rest stay aligned):

- wrong: one slot (class, tone or size, uniformly) gets a different value;
- incomplete: tone or size (uniformly) is left out — the class noun is always written;
- unrelated: the clean caption of another pair that differs in at least two of the three slots
  (a caption that differs in one word only is, by construction, indistinguishable from a wrong
  one, so it is not counted as unrelated).

The truth table has ``kind``, ``slot`` (changed or dropped slot, "" otherwise), ``said`` and
``true`` (the written and the correct word of a wrong slot) and ``source`` (−1 unless unrelated).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from misalignlab.data.loaders.fashion_mnist import FASHION_MNIST_CLASSES, SIZES, TONES, FashionPairs, fashion_caption

SLOTS = {"class": FASHION_MNIST_CLASSES, "tone": TONES, "size": SIZES}


def inject_fashion(
    pairs: FashionPairs, wrong: float = 0.0, incomplete: float = 0.0, unrelated: float = 0.0, seed: int = 0
) -> tuple[list[str], pd.DataFrame]:
    """Captions with planted misalignment and their truth table (one row per pair)."""
    if min(wrong, incomplete, unrelated) < 0 or wrong + incomplete + unrelated > 1:
        raise ValueError(f"rates must be >= 0 and sum to <= 1, got {wrong}, {incomplete}, {unrelated}")
    rng = np.random.default_rng(seed)
    n = len(pairs)
    codes = {"class": pairs.labels, "tone": pairs.tone.astype(np.int64), "size": pairs.size.astype(np.int64)}
    draw = rng.random(n)
    kind = np.select(
        [draw < wrong, draw < wrong + incomplete, draw < wrong + incomplete + unrelated],
        ["wrong", "incomplete", "unrelated"],
        "aligned",
    )
    captions, rows = list(pairs.captions), []
    for i in range(n):
        truth = {f: SLOTS[f][codes[f][i]] for f in SLOTS}
        row = {"kind": str(kind[i]), "slot": "", "said": "", "true": "", "source": -1}
        if kind[i] == "wrong":
            slot = str(rng.choice(list(SLOTS)))
            k = len(SLOTS[slot])
            said = SLOTS[slot][(codes[slot][i] + rng.integers(1, k)) % k]
            row |= {"slot": slot, "said": said, "true": truth[slot]}
            captions[i] = fashion_caption(
                **{"cls": truth["class"], "tone": truth["tone"], "size": truth["size"]}
                | ({"cls": said} if slot == "class" else {slot: said})
            )
        elif kind[i] == "incomplete":
            slot = str(rng.choice(["tone", "size"]))
            row["slot"] = slot
            captions[i] = fashion_caption(truth["class"], **{"tone": truth["tone"], "size": truth["size"], slot: None})
        elif kind[i] == "unrelated":
            for _ in range(200):
                j = int(rng.integers(n))
                if sum(codes[f][j] != codes[f][i] for f in SLOTS) >= 2:
                    row["source"], captions[i] = j, pairs.captions[j]
                    break
            else:  # no such caption (tiny or degenerate data): keep it aligned
                row["kind"] = "aligned"
        rows.append(row)
    return captions, pd.DataFrame(rows)
