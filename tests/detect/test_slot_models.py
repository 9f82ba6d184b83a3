"""Per-slot image-side evidence: margins are read against the slot's value prior."""

import numpy as np

from misalignlab.detect.slot_models import fit_sample, fit_slot_models, value_log_prior
from misalignlab.detect.stated import Stated


def _stated(value: np.ndarray, names: tuple[str, ...]) -> Stated:
    n = len(value)
    return Stated(
        slots=("defect",), phrases=(names,), phrase_value=(np.arange(len(names)),), value_names=(names,),
        said=value[:, None].astype(np.int32), start=np.zeros((n, 1), np.int32), end=np.ones((n, 1), np.int32),
    )  # fmt: skip


def test_value_prior_is_the_smoothed_share_of_stated_values():
    prior = np.exp(value_log_prior(np.array([0, 0, 0, 1, -1, -1]), 3))
    assert np.allclose(prior, [4 / 7, 2 / 7, 1 / 7])


def test_an_unbalanced_slot_the_images_do_not_show_is_not_seen_and_flags_nothing():
    # three captions in four state the defect, independently of the image: with posterior margins every
    # "intact" caption looked contradicted, and the imbalance alone separated the simulated swaps
    rng = np.random.default_rng(0)
    n = 2000
    value = (rng.random(n) < 0.25).astype(np.int64)  # 0 = scratched (75 %), 1 = intact
    codes = rng.normal(size=(n, 16)).astype(np.float32)
    models = fit_slot_models(_stated(value, ("scratched", "intact")), codes, codes, np.zeros(n, np.int64))
    assert models.visibility[0] < 0.6
    margin = models.margin(0, value)
    assert np.median(margin[value == 1]) < 0.3
    lp = models.logp[0]
    posterior_margin = lp.max(axis=1) - lp[np.arange(n), value]
    assert np.median(posterior_margin[value == 1]) > 0.8  # what the posterior made of the same pairs


def test_a_visible_slot_stays_visible_and_its_wrong_words_have_large_margins():
    rng = np.random.default_rng(1)
    n = 2000
    truth = (rng.random(n) < 0.25).astype(np.int64)
    codes = rng.normal(size=(n, 16)).astype(np.float32)
    codes[:, 0] += 3.0 * truth
    value = truth.copy()
    flipped = rng.random(n) < 0.05
    value[flipped] = 1 - value[flipped]
    models = fit_slot_models(_stated(value, ("scratched", "intact")), codes, codes, np.zeros(n, np.int64))
    assert models.visibility[0] > 0.85
    margin = models.margin(0, value)
    assert np.median(margin[flipped]) > 2 * np.quantile(margin[~flipped], 0.9)


def test_a_capped_fit_keeps_every_value_and_scores_every_pair_out_of_sample():
    rng = np.random.default_rng(2)
    n = 3000
    truth = np.where(rng.random(n) < 0.01, 2, (rng.random(n) < 0.3).astype(np.int64))  # value 2 is rare (~30 pairs)
    codes = rng.normal(size=(n, 16)).astype(np.float32)
    codes[np.arange(n), truth] += 3.0
    stated = _stated(truth, ("scratched", "intact", "dented"))
    full = fit_slot_models(stated, codes, codes, np.zeros(n, np.int64))
    capped = fit_slot_models(stated, codes, codes, np.zeros(n, np.int64), max_fit=600)
    assert np.isfinite(capped.logp[0]).all()
    ev_full, ev_capped = full.evidence(0), capped.evidence(0)
    right, right_full = np.argmax(ev_capped, axis=1) == truth, np.argmax(ev_full, axis=1) == truth
    assert right[truth == 2].mean() > 0.9  # the rare value was fitted on, too
    assert right.mean() > right_full.mean() - 0.03 > 0.9  # fitted on a fifth of the pairs
    assert abs(capped.visibility[0] - full.visibility[0]) < 0.03
    assert np.corrcoef(ev_full[:, 2], ev_capped[:, 2])[0, 1] > 0.9
    same = fit_slot_models(stated, codes, codes, np.zeros(n, np.int64), max_fit=n)
    assert np.array_equal(same.logp[0], full.logp[0])  # no cap reached: the fits are the uncapped ones


def test_the_fit_sample_keeps_at_least_thirty_of_each_value():
    y = np.r_[np.zeros(10_000, np.int64), np.ones(40, np.int64)]
    pick = fit_sample(y, 1000, np.random.default_rng(0))
    assert len(np.unique(pick)) == len(pick) and np.all(np.diff(pick) > 0)
    assert (y[pick] == 1).sum() == 30 and abs(len(pick) - 1026) <= 2
    assert np.array_equal(fit_sample(y[:500], 1000, np.random.default_rng(0)), np.arange(500))
