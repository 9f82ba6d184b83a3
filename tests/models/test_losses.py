import math

import pytest
import torch

from misalignlab.models.losses import LOSSES, build_loss


def test_clip_cross_modal_hand_computed():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # cosine logits = identity, τ = 1: every row and column CE is log(1 + e^-1)
    loss = build_loss("clip_cross_modal", tau=1.0)(a, a.clone())
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    # τ = 0.5 doubles the logits
    loss = build_loss("clip_cross_modal", tau=0.5)(a, a.clone())
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)


def test_clip_neg_sq_euclid_hand_computed():
    a = torch.tensor([[0.0], [1.0]])
    b = torch.tensor([[0.0], [2.0]])
    # logits −‖a_i − b_j‖²: [[0, −4], [−1, −1]]
    rows = [math.log(1 + math.exp(-4)), math.log(2)]  # row 0: (0, −4) target 0; row 1: (−1, −1)
    cols = [math.log(1 + math.exp(-1)), 1 + math.log(math.exp(-4) + math.exp(-1))]  # cols: (0, −1), (−4, −1)
    expected = 0.5 * (sum(rows) / 2 + sum(cols) / 2)
    got = build_loss("clip_cross_modal", tau=1.0, similarity="neg_sq_euclid")(a, b)
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_sqeuclid_independent_in_batch_hand_computed():
    a = torch.tensor([[0.0], [1.0]])
    b = torch.tensor([[0.0], [2.0]])
    log2 = math.log(2)
    # x→t: pair 0: d+=0, neg −1  → log(e^-1 + e^0) − log 2;  pair 1: d+=1, neg −1 → 1 + log(2e^-1) − log 2
    xt = [math.log(math.exp(-1) + 1) - log2, 1 + math.log(2 * math.exp(-1)) - log2]
    # t→x: pair 0: d+=0, neg −4 → log(e^-4 + 1) − log 2;  pair 1: d+=1, neg −4 → 1 + log(e^-4 + e^-1) − log 2
    tx = [math.log(math.exp(-4) + 1) - log2, 1 + math.log(math.exp(-4) + math.exp(-1)) - log2]
    expected = sum(0.5 * (x + t) for x, t in zip(xt, tx)) / 2
    got = build_loss("sqeuclid_independent")(a, b)
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_sqeuclid_independent_uses_given_negatives():
    a = torch.tensor([[0.0]])
    b = torch.tensor([[1.0]])
    a_neg = torch.tensor([[3.0]])
    b_neg = torch.tensor([[1.0]])
    # x→t: 1 + log((e^-9 + e^-1)/2);  t→x: 1 + log((e^0 + e^-1)/2)
    expected = 0.5 * ((1 + math.log((math.exp(-9) + math.exp(-1)) / 2)) + (1 + math.log((1 + math.exp(-1)) / 2)))
    got = build_loss("sqeuclid_independent")(a, b, img_neg=a_neg, txt_neg=b_neg)
    assert got.item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name", LOSSES.names())
def test_stacked_inputs_equal_per_model_losses(name):
    torch.manual_seed(0)
    a, b = torch.randn(3, 6, 4), torch.randn(3, 6, 4)
    loss = build_loss(name)
    stacked = loss(a, b)
    alone = torch.stack([loss(a[m], b[m]) for m in range(3)])
    torch.testing.assert_close(stacked, alone)


@pytest.mark.parametrize("name", ["clip_cross_modal", "ntxent_intra_modal", "sqeuclid_independent"])
def test_zero_weight_drops_a_pair(name):
    torch.manual_seed(1)
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    loss = build_loss(name)
    w = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0])
    per_pair = loss.per_pair(a, b)
    assert loss(a, b, weight=w).item() == pytest.approx(per_pair[w > 0].mean().item(), abs=1e-6)


def test_ntxent_matches_definition():
    torch.manual_seed(2)
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    codes = torch.nn.functional.normalize(torch.cat([a, b]), dim=1)
    sim = codes @ codes.T
    total = 0.0
    for i in range(8):
        pos = (i + 4) % 8
        others = [j for j in range(8) if j != i]
        total += -(sim[i, pos] - torch.logsumexp(sim[i, others], 0))
    assert build_loss("ntxent_intra_modal")(a, b).item() == pytest.approx(total.item() / 8, abs=1e-5)


def test_bad_loss_arguments_raise():
    with pytest.raises(ValueError, match="tau"):
        build_loss("clip_cross_modal", tau=0.0)
    with pytest.raises(ValueError, match="similarity"):
        build_loss("clip_cross_modal", similarity="dot")
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("infonce")


def test_align_weight_scales_only_the_alignment_term():
    torch.manual_seed(3)
    a, b = torch.randn(6, 3), torch.randn(6, 3)
    base = build_loss("sqeuclid_independent")(a, b)
    heavy = build_loss("sqeuclid_independent", align_weight=3.0)(a, b)
    d_pos = ((a - b) ** 2).sum(-1).mean()
    assert heavy.item() == pytest.approx(base.item() + 2.0 * d_pos.item(), abs=1e-5)
    with pytest.raises(ValueError, match="align_weight"):
        build_loss("sqeuclid_independent", align_weight=0.0)


def test_clip_alignment_term_adds_alpha_times_the_pair_distance_over_tau():
    torch.manual_seed(0)
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    for similarity in ("cosine", "neg_sq_euclid"):
        plain = build_loss("clip_cross_modal", tau=0.5, similarity=similarity)
        aligned = build_loss("clip_cross_modal", tau=0.5, similarity=similarity, align_weight=2.0)
        dist = 1 - torch.nn.functional.cosine_similarity(a, b) if similarity == "cosine" else ((a - b) ** 2).sum(-1)
        torch.testing.assert_close(aligned.per_pair(a, b), plain.per_pair(a, b) + 2.0 * dist / 0.5)
        torch.testing.assert_close(aligned.per_pair_rows(a, b, slice(2, 5)), aligned.per_pair(a, b)[2:5])
    with pytest.raises(ValueError, match="align_weight"):
        build_loss("clip_cross_modal", align_weight=-1.0)
