"""Pilot options on tiny inputs: which pairs a cleaning run fixes or removes, and how the plan fits the budget."""

from dataclasses import replace

import numpy as np
import pytest

from misalignlab.pilot.config import PilotCfg, PilotTask
from misalignlab.pilot.data import PilotData, heldout_split
from misalignlab.pilot.options import cleaned, most_suspicious, option_names, plan_runs, prepare


def data(truth: bool) -> PilotData:
    n = 6
    images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 8, 8, 3), np.uint8)
    caps = tuple(f"caption {i}" for i in range(n))
    clean = tuple(f"clean {i}" for i in range(n)) if truth else None
    return PilotData("toy", tuple(str(i) for i in range(n)), images, caps, None, clean)


SCORE = np.array([0.1, 0.9, 0.3, 0.8, 0.2, 0.9])


def test_most_suspicious_takes_the_top_share_ties_in_order():
    assert most_suspicious(SCORE, 0.5).tolist() == [False, True, False, True, False, True]
    assert most_suspicious(SCORE, 1 / 3).tolist() == [False, True, False, False, False, True]


def test_cleaning_fixes_exactly_the_flagged_captions_when_truth_is_known():
    pairs = cleaned(data(truth=True), SCORE, 0.5)
    assert pairs.captions == ("caption 0", "clean 1", "caption 2", "clean 3", "caption 4", "clean 5")
    assert len(pairs) == 6


def test_cleaning_removes_the_flagged_pairs_when_truth_is_unknown():
    pairs = cleaned(data(truth=False), SCORE, 0.5)
    assert pairs.pair_id.tolist() == ["0", "2", "4"]
    assert pairs.images[:, 0, 0, 0].tolist() == [0, 2, 4]


def test_prepare_builds_the_named_strategy():
    cfg = PilotCfg(task=PilotTask(tasks=("shape",), nuisance=("background",)))
    strategy, _ = prepare("filter", data(True), SCORE, flagged_rate=0.9, cfg=cfg)
    assert strategy.name == "filter" and strategy.fraction == 0.5  # flagged rate capped at 50 %
    strategy, _ = prepare("augment", data(True), SCORE, 0.1, cfg)
    assert strategy.params()["omit"] == {"background": 1.0}
    strategy, pairs = prepare("clean@0.5", data(True), SCORE, 0.1, cfg)
    assert strategy.name == "baseline" and pairs.captions[1] == "clean 1"


def test_augment_is_only_an_option_when_the_task_names_nuisance_factors():
    assert option_names(PilotCfg(clean_fractions=(0.1, 0.3))) == [
        "baseline",
        "clean@0.1",
        "clean@0.3",
        "filter",
        "reweight",
    ]
    with_nuisance = PilotCfg(task=PilotTask(nuisance=("background",)), adapt=("augment",), clean_fractions=(0.2,))
    assert option_names(with_nuisance) == ["baseline", "clean@0.2", "augment"]


def test_plan_fits_the_budget_with_most_seeds_at_half_the_steps():
    cfg = PilotCfg(seeds=3, min_steps=50, max_steps=400)
    options = ["baseline", "clean@0.1", "filter", "reweight"]
    # 4 options × 3 seeds × (200 steps × 0.1 s + 1 s) = 252 s: three seeds fit at exactly half of max_steps.
    plan = plan_runs(cfg, options, seconds_left=252.0, step_s=0.1, eval_s=1.0, detect_steps=100)
    assert (plan.seeds, plan.steps) == (3, 200) and plan.expected_seconds == pytest.approx(252.0)
    plan = plan_runs(cfg, options, seconds_left=100.0, step_s=0.1, eval_s=1.0, detect_steps=100)
    assert (plan.seeds, plan.steps) == (2, 115) and plan.expected_seconds <= 100.0
    plan = plan_runs(cfg, options, seconds_left=10.0, step_s=0.1, eval_s=1.0, detect_steps=100)
    assert (plan.seeds, plan.steps) == (
        1,
        50,
    )  # below the minimum: one seed at min_steps (the runner cuts what overruns)


def test_a_subset_keeps_which_captions_share_an_image():
    keyed = replace(data(False), image_keys=("a", "a", "b", "b", "b", "c"))
    assert keyed.subset(np.array([1, 2, 5])).image_keys == ("a", "b", "c")
    assert data(False).subset(np.array([0, 1])).image_keys is None


def test_heldout_split_takes_test_pairs_only_from_aligned_ones():
    aligned = np.array([True, False, True, True, False, True])
    train, test = heldout_split(data(False), aligned, share=0.34, seed=0)
    assert len(test) == 2 and set(test.ids) <= {"0", "2", "3", "5"}
    assert sorted(train.ids + test.ids) == [str(i) for i in range(6)]
    with pytest.raises(ValueError, match="fewer than 2 images with a pair typed aligned"):
        heldout_split(data(False), np.zeros(6, bool), 0.5, 0)


def test_heldout_split_holds_out_whole_images_with_one_test_caption_each():
    keyed = replace(data(False), image_keys=("a", "a", "b", "b", "c", "c"))
    aligned = np.array([False, True, True, True, True, False])
    for seed in range(5):
        train, test = heldout_split(keyed, aligned, share=0.67, seed=seed)
        assert len(test) == 2 and len(set(test.image_keys)) == 2  # two images, one caption each
        assert set(test.ids) <= {"1", "2", "4"}  # each image's first aligned pair
        assert not set(train.image_keys) & set(test.image_keys)  # no test image is trained on
        assert len(train) == 2
