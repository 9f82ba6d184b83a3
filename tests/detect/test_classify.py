"""Typing and explanations on planted slot evidence give exact answers."""

import numpy as np

from misalignlab.detect import DETECTORS
from misalignlab.detect.base import PairView
from misalignlab.detect.classify import TypingCfg, classify
from misalignlab.detect.explain import explanations
from misalignlab.detect.slots import SlotEvidence
from misalignlab.evaluate.detection_metrics import auroc

from .conftest import planted_view

SLOTS = ("colour", "size", "shape")
VALUES = (("red", "blue", "green", "pink"), ("small", "medium", "large"), ("bolt", "gear", "nut", "spring", "washer"))


def planted_evidence(n: int = 300, seed: int = 0) -> tuple[SlotEvidence, np.ndarray, np.ndarray]:
    """Pairs 0–29 wrong (slot i % 3 → value 'true'), 30–59 unrelated (two slots), 60–89 incomplete (size)."""
    rng = np.random.default_rng(seed)
    said = np.stack([rng.integers(0, len(v), n) for v in VALUES], axis=1).astype(np.int16)  # (N, S)
    pair_sim = (0.6 + 0.03 * rng.normal(size=n)).astype(np.float32)
    swap = np.full((n, 3, 5), np.nan, dtype=np.float32)
    for s, vals in enumerate(VALUES):
        swap[:, s, : len(vals)] = pair_sim[:, None] - 0.25 + 0.03 * rng.normal(size=(n, len(vals)))
        swap[np.arange(n), s, said[:, s]] = pair_sim
    kind = np.array(["aligned"] * n, dtype="<U10")
    right = np.full(n, -1)
    for i in range(30):
        s = i % 3
        right[i] = (said[i, s] + 1) % len(VALUES[s])
        swap[i, s, right[i]] = pair_sim[i] + 0.2
        kind[i] = "wrong"
    for i in range(30, 60):
        for s in (0, 2):
            swap[i, s, (said[i, s] + 1) % len(VALUES[s])] = pair_sim[i] + 0.2
        kind[i] = "unrelated"
    said[60:90, 1] = -1
    swap[60:90, 1] = np.nan
    kind[60:90] = "incomplete"
    ev = SlotEvidence(SLOTS, VALUES, np.ones(3, dtype=bool), said, swap, pair_sim)
    return ev, kind, right


def test_classify_recovers_planted_types_and_values():
    ev, kind, right = planted_evidence()
    fold = np.arange(len(kind)) % 2
    typed = classify(ev, fold)
    assert (typed.kind == kind).all()
    for i in range(30):
        s = i % 3
        assert typed.contradicted[i].sum() == 1 and typed.contradicted[i, s]
        assert typed.best_value[i, s] == right[i]
    assert typed.missing[60:90, 1].all() and not typed.missing[90:].any()


def test_invisible_slot_is_never_contradicted():
    ev, _, _ = planted_evidence()
    noisy = ev.swap_sim.copy()
    rng = np.random.default_rng(3)
    noisy[:, 2, :5] = ev.pair_sim[:, None] + 0.05 * rng.normal(size=(len(ev.pair_sim), 5))  # shape: a coin flip
    blind = SlotEvidence(ev.slots, ev.values, ev.usual, ev.said, noisy, ev.pair_sim)
    typed = classify(blind, np.zeros(len(ev.pair_sim), dtype=int), TypingCfg())
    assert typed.contradicted[:, 2].mean() < 0.02


def test_combined_types_and_explains_planted_pairs():
    ev, kind, right = planted_evidence()
    base, _ = planted_view(n=len(kind), n_bad=0)
    view = PairView(base.pair_id, base.image_emb, base.text_emb, base.fold, ev)
    res = DETECTORS.get("combined")().detect(view)
    assert (res.kind == kind).all()
    assert auroc(res.score, kind != "aligned") > 0.95
    text = explanations(res, view.pair_id)
    assert text[0] == f"colour: caption says '{VALUES[0][ev.said[0, 0]]}', image looks '{VALUES[0][right[0]]}'"
    assert text[61] == "missing: size"
    assert text[31].startswith("caption matches image '") and "colour: caption says" in text[31]
    assert (text[90:] == "").all()
    swap = DETECTORS.get("slot_swap")().detect(view)
    assert auroc(swap.score, (kind == "wrong") | (kind == "unrelated")) > 0.99
