"""Negate strategies on tiny inputs: which pairs filter drops, reweight's weights, robust targets."""

import numpy as np
import pytest
import torch

from misalignlab.detect.base import DetectionResult
from misalignlab.models.losses import ClipInfoNCE
from misalignlab.strategies import STRATEGIES, PairSet, build_strategy
from misalignlab.strategies.negate import soft_correspondence


def _pairs(n=6):
    images = np.arange(n, dtype=np.uint8)[:, None, None, None].repeat(2, 1).repeat(2, 2).repeat(3, 3)
    return PairSet.build(images, [f"a red gear {i}" for i in range(n)])


def _found(score, order=None):
    ids = np.arange(len(score)).astype(str)
    order = np.arange(len(score)) if order is None else np.asarray(order)
    return DetectionResult("fake", ids[order], np.asarray(score, np.float32)[order])


def test_registry_lists_every_strategy_with_its_family():
    fam = {n: STRATEGIES.get(n).family for n in STRATEGIES.names()}
    assert fam == {
        "baseline": "none",
        "filter": "negate",
        "reweight": "negate",
        "robust": "negate",
        "augment": "embrace",
        "multipositive": "embrace",
    }
    with pytest.raises(ValueError, match="filter"):
        STRATEGIES.get("nope")


def test_filter_threshold_drops_exactly_the_flagged_pairs_even_when_scores_come_permuted():
    pairs, score = _pairs(), [0.1, 0.9, 0.5, 0.95, 0.0, 0.7]
    kept = build_strategy("filter", threshold=0.7).prepare(pairs, _found(score, [5, 3, 1, 0, 2, 4]))
    assert kept.pair_id.tolist() == ["0", "2", "4"]
    assert kept.captions == ("a red gear 0", "a red gear 2", "a red gear 4")
    assert kept.images[:, 0, 0, 0].tolist() == [0, 2, 4]


def test_filter_fraction_drops_the_top_scores_and_breaks_ties_by_position():
    pairs, score = _pairs(), [0.5, 0.9, 0.5, 0.2, 0.5, 0.1]
    kept = build_strategy("filter", fraction=0.5).prepare(pairs, _found(score))
    assert kept.pair_id.tolist() == ["3", "4", "5"]  # 0.9, then the first two 0.5s go


def test_filter_needs_scores_and_exactly_one_rule():
    with pytest.raises(ValueError, match="exactly one"):
        build_strategy("filter")
    with pytest.raises(ValueError, match="needs detector scores"):
        build_strategy("filter", threshold=0.5).prepare(_pairs())
    with pytest.raises(ValueError, match="no score"):
        build_strategy("filter", threshold=0.5).prepare(_pairs(), _found([0.1, 0.2]))


def test_reweight_weights_sum_to_n_and_fall_as_the_score_rises():
    score = np.array([0.0, 0.25, 0.5, 1.0, 0.75, 0.1])
    out = build_strategy("reweight", floor=0.05).prepare(_pairs(), _found(score))
    w = out.weights
    assert w.sum() == pytest.approx(6.0, rel=1e-5) and np.all(w > 0)
    assert np.argsort(w).tolist() == np.argsort(-score).tolist()
    assert w[0] / w[2] == pytest.approx(1.0 / 0.5) and w[3] / w[0] == pytest.approx(0.05)


def test_reweight_weights_reach_the_loss_and_change_it():
    torch.manual_seed(0)
    img, txt = torch.randn(4, 3), torch.randn(4, 3)
    loss = ClipInfoNCE(tau=0.5)
    strat = build_strategy("reweight")
    w = torch.tensor([1.0, 0.0, 0.0, 0.0])
    terms, _ = strat.training_forward(img, txt, {"weight": w}, loss)
    assert terms["contrastive_loss"].item() == pytest.approx(loss.per_pair(img, txt)[0].item(), rel=1e-5)


def test_robust_targets_are_rows_summing_to_one_and_reduce_to_clip_at_alpha_zero():
    torch.manual_seed(1)
    logits = torch.randn(5, 5, requires_grad=True)
    t = soft_correspondence(logits, 0.3)
    assert torch.allclose(t.sum(-1), torch.ones(5)) and not t.requires_grad
    assert torch.all(t.diagonal() >= 0.7)
    img, txt, loss = torch.randn(5, 4), torch.randn(5, 4), ClipInfoNCE(tau=0.2)
    plain, _ = build_strategy("robust", alpha=0.0).training_forward(img, txt, {}, loss)
    assert plain["contrastive_loss"].item() == pytest.approx(loss(img, txt).item(), rel=1e-5)
    soft, logs = build_strategy("robust", alpha=0.5).training_forward(img, txt, {}, loss)
    assert soft["contrastive_loss"].item() != pytest.approx(plain["contrastive_loss"].item())
    assert 0.5 <= logs["target_diag"] <= 1.0
