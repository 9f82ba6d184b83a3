"""Calibration on simulated misalignment: mixture shares, odds and P(unrelated | similarity)."""

import numpy as np

from misalignlab.detect.calibrate import auc, mixture_share, odds_ratio, shuffled_similarity, unrelated_odds

from .conftest import one_hot_images, planted_view


def test_auc_matches_pair_counting():
    pos, neg = np.array([0.9, 0.5, 0.2]), np.array([0.1, 0.5, 0.3, 0.8])
    by_hand = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auc(pos, neg) == by_hand
    assert auc(pos, np.array([])) == 0.5


def test_share_and_odds_recover_a_planted_mixture_and_its_posterior():
    rng = np.random.default_rng(0)
    share = 0.15
    bad = rng.random(20000) < share
    observed = np.where(bad, rng.normal(3, 1, 20000), rng.normal(0, 1, 20000))
    simulated = rng.normal(3, 1, 20000)
    assert abs(mixture_share(observed, simulated, high=True) - share) < 0.03
    posterior = np.minimum(
        1, mixture_share(observed, simulated, high=True) * odds_ratio(observed, simulated, True)(observed)
    )
    truth = (
        share
        * np.exp(-((observed - 3) ** 2) / 2)
        / (share * np.exp(-((observed - 3) ** 2) / 2) + (1 - share) * np.exp(-(observed**2) / 2))
    )
    assert np.abs(posterior - truth).mean() < 0.05
    low = mixture_share(-observed, -simulated, high=False)  # the same mixture seen from the low side
    assert abs(low - share) < 0.03


def test_a_small_share_is_not_read_off_the_noise_of_a_few_extreme_pairs():
    # 1,500 pairs, 3 % misaligned: at the simulated tail's far cuts only a handful of observed pairs remain,
    # and the smallest ratio there is noise, biased low; cuts with 1 to 9 pairs beyond are skipped.
    floored, unfloored = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        bad = rng.random(1500) < 0.03
        observed = np.where(bad, rng.normal(3, 1, 1500), rng.normal(0, 1, 1500))
        simulated = rng.normal(3, 1, 5000)
        floored.append(mixture_share(observed, simulated, high=True))
        beyond = np.searchsorted(np.sort(observed), np.quantile(simulated, np.linspace(0, 0.9, 91)))
        q_obs = 1 - beyond / len(observed)
        unfloored.append(np.min(q_obs / (1 - np.linspace(0, 0.9, 91))))  # the plain smallest ratio
    assert abs(np.mean(floored) - 0.03) < 0.005
    assert np.mean(unfloored) < np.mean(floored) - 0.003


def test_unrelated_odds_find_swapped_captions_and_their_share():
    view, bad = planted_view(n=2000, n_bad=200)
    sim = np.einsum("nd,nd->n", view.image_emb, view.text_emb)
    odds, share = unrelated_odds(sim, view.image_emb, view.text_emb, view.fold)
    p = np.minimum(1, share * odds)
    flagged = p > 0.5
    assert flagged[bad].mean() > 0.9 and (~bad[flagged]).mean() < 0.05
    assert abs(share - bad.mean()) < 0.03 and abs(p.mean() - bad.mean()) < 0.03


def test_clean_data_has_no_unrelated_pairs():
    view, _ = planted_view(n=1000, n_bad=0)
    sim = np.einsum("nd,nd->n", view.image_emb, view.text_emb)
    odds, share = unrelated_odds(sim, view.image_emb, view.text_emb, view.fold)
    assert (share * odds < 0.5).all()


def test_the_unrelated_null_pairs_no_caption_with_another_caption_of_its_image():
    view = one_hot_images()  # 20 images × 5 captions: a caption's cosine is 1 with its own image, 0 with the others
    idx, group = np.arange(len(view)), view.image_groups()
    null = shuffled_similarity(view.image_emb, view.text_emb, idx, 20, np.random.default_rng(0), group)
    assert len(null) > 0.9 * 20 * len(view) and (null == 0).all()  # every null pair is truly mismatched
    # keyed by pair alone, about 4 in 99 draws give a caption of the same image: a matched pair counted as unrelated
    blind = shuffled_similarity(view.image_emb, view.text_emb, idx, 20, np.random.default_rng(0))
    assert 0.02 < (blind == 1).mean() < 0.07
