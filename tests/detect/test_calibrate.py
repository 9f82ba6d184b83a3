"""Calibration of the type rules on the data: slot visibility and P(unrelated | similarity)."""

import numpy as np

from misalignlab.detect.calibrate import auc, simulated_margins, slot_visibility, unrelated_probability
from misalignlab.detect.classify import TypingCfg, classify, slot_margins
from misalignlab.detect.slots import SlotEvidence

from .conftest import planted_view
from .test_classify import planted_evidence


def test_auc_matches_pair_counting():
    pos, neg = np.array([0.9, 0.5, 0.2]), np.array([0.1, 0.5, 0.3, 0.8])
    by_hand = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auc(pos, neg) == by_hand


def test_simulated_margins_are_those_of_each_other_stated_value():
    swap = np.array([[0.5, 0.2, 0.1]], dtype=np.float32)  # one pair states value 0 (sim 0.5)
    # stating 1: best other is 0.5 → margin 0.3; stating 2: margin 0.4
    assert np.allclose(np.sort(simulated_margins(swap, np.array([0]))), [0.3, 0.4])


def test_visible_slot_near_one_and_unseen_slot_near_half():
    ev, _, _ = planted_evidence(n=400)
    rng = np.random.default_rng(1)
    noisy = ev.swap_sim.copy()
    noisy[:, 2, :5] = ev.pair_sim[:, None] + 0.05 * rng.normal(size=(len(ev.pair_sim), 5))  # shape: unseen
    blind = SlotEvidence(ev.slots, ev.values, ev.usual, ev.said, noisy, ev.pair_sim)
    fold = np.arange(len(ev.pair_sim)) % 2
    margin, _ = slot_margins(blind)
    vis = slot_visibility(blind, margin, fold)
    assert vis.shape == margin.shape
    assert (vis[:, :2] > 0.95).all()  # colour, size: a simulated wrong word looks wrong
    assert (np.abs(vis[:, 2] - 0.5) < 0.1).all()  # shape: it looks like the stated one
    assert not classify(blind, fold).contradicted[:, 2].any()  # so shape is never contradicted


def test_unrelated_probability_finds_swapped_captions_and_their_share():
    view, bad = planted_view(n=2000, n_bad=200)
    sim = np.einsum("nd,nd->n", view.image_emb, view.text_emb)
    p = unrelated_probability(sim, view.image_emb, view.text_emb, view.fold, np.zeros(len(sim), dtype=int))
    assert p.shape == bad.shape and ((p >= 0) & (p <= 1)).all()
    flagged = p > 0.5
    assert flagged[bad].mean() > 0.9 and (~bad[flagged]).mean() < 0.05
    assert abs(p.mean() - bad.mean()) < 0.03  # the posterior averages to the planted share


def test_clean_data_has_no_unrelated_pairs():
    view, _ = planted_view(n=1000, n_bad=0)
    sim = np.einsum("nd,nd->n", view.image_emb, view.text_emb)
    p = unrelated_probability(sim, view.image_emb, view.text_emb, view.fold, np.zeros(len(sim), dtype=int))
    assert (p < 0.5).all()


def test_captions_with_fewer_slots_are_compared_with_their_like():
    """Short captions fit their images less well; compared with all pairs they would look unrelated."""
    view, _ = planted_view(n=2000, n_bad=0)
    img, txt = view.image_emb, view.text_emb.copy()
    short = np.arange(len(img)) % 3 == 0
    rng = np.random.default_rng(2)
    txt[short] = txt[short] + 0.9 * rng.normal(size=txt[short].shape) / np.sqrt(txt.shape[1])  # less specific
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    sim = np.einsum("nd,nd->n", img, txt)
    pooled = unrelated_probability(sim, img, txt, view.fold, np.zeros(len(sim), dtype=int))
    grouped = unrelated_probability(sim, img, txt, view.fold, short.astype(int))
    assert (grouped[short] > 0.5).mean() < 0.02
    assert (grouped[short] > 0.5).mean() <= (pooled[short] > 0.5).mean()


def test_classify_types_a_swapped_caption_unrelated_only_with_codes():
    view, bad = planted_view(n=2000, n_bad=200)  # the calibration needs about a thousand pairs per fold
    ev, kind, _ = planted_evidence(n=2000)
    clean = kind == "aligned"
    target = np.flatnonzero(bad & clean)  # swapped codes, but slot evidence that looks aligned
    assert len(target) > 10
    sim = np.einsum("nd,nd->n", view.image_emb, view.text_emb).astype(np.float32)
    shifted = ev.swap_sim + (sim - ev.pair_sim)[:, None, None]  # the same margins around the codes' similarity
    ev = SlotEvidence(ev.slots, ev.values, ev.usual, ev.said, shifted, sim)
    with_codes = classify(ev, view.fold, TypingCfg(), view.image_emb, view.text_emb)
    assert (with_codes.kind[target] == "unrelated").mean() > 0.9
    assert (with_codes.kind[clean & ~bad] == "aligned").mean() > 0.97
    without = classify(ev, view.fold, TypingCfg())
    assert (without.unrelated_p == 0).all() and not (without.kind[target] == "unrelated").any()
