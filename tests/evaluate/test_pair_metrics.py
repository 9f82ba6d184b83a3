"""Retrieval, zero-shot, probe and interval metrics on hand-made inputs."""

import numpy as np
import pandas as pd
import pytest

from misalignlab.evaluate.pair_metrics import (
    recall_at_k,
    retrieval_metrics,
    summarise_seeds,
    t_interval,
    zero_shot_metrics,
)
from misalignlab.evaluate.probes import linear_class_metrics


def test_recall_at_k_on_a_known_similarity_matrix():
    sim = np.array(
        [
            [0.9, 0.1, 0.0],  # row 0: match ranked 1st
            [0.8, 0.5, 0.7],  # row 1: match ranked 3rd
            [0.2, 0.9, 0.3],
        ]
    )  # row 2: match ranked 2nd
    assert recall_at_k(sim, 1) == pytest.approx(1 / 3)
    assert recall_at_k(sim, 2) == pytest.approx(2 / 3)
    assert recall_at_k(sim, 3) == 1.0
    assert recall_at_k(np.ones((4, 4)), 1) == 1.0  # ties favour the match


def test_retrieval_metrics_keys_and_directions():
    img = np.eye(3)
    txt = np.array([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]])  # texts 1 and 2 swapped
    out = retrieval_metrics(img, txt, ks=(1, 2))
    assert set(out) == {"image_to_text_R@1", "image_to_text_R@2", "text_to_image_R@1", "text_to_image_R@2", "rsum"}
    assert out["image_to_text_R@1"] == pytest.approx(1 / 3) and out["text_to_image_R@2"] == 1.0
    assert out["rsum"] == pytest.approx(100 * (1 / 3 + 1 + 1 / 3 + 1))


def test_zero_shot_picks_the_most_similar_prompt():
    prompts = np.array([[1.0, 0.0], [0.0, 1.0]])
    img = np.array([[2.0, 0.1], [0.1, 3.0], [1.0, 0.9], [0.0, 1.0]])
    out = zero_shot_metrics(img, prompts, np.array([0, 1, 1, 1]), "shape")
    assert out["zeroshot/shape/acc1"] == 0.75
    assert out["zeroshot/shape/mean_per_class_recall"] == pytest.approx((1.0 + 2 / 3) / 2)


def test_linear_probe_on_separable_codes_is_perfect():
    rng = np.random.default_rng(0)
    y = rng.integers(3, size=300)
    z = np.eye(3)[y] + 0.05 * rng.standard_normal((300, 3))
    out = linear_class_metrics(z[:200], y[:200], z[200:], y[200:], "shape")
    assert out == {"probe/shape/linear/acc": 1.0, "probe/shape/linear/mcc": 1.0}


def test_t_interval_formula():
    mean, half = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)  # t_{0.975, 2} = 4.3027
    assert np.isnan(t_interval([5.0])[1]) and t_interval([5.0])[0] == 5.0
    assert t_interval([2.0, 2.0])[1] == 0.0


def test_summarise_seeds_groups_rows():
    rows = pd.DataFrame({"strategy": ["a"] * 3 + ["b"] * 3, "metric": ["m"] * 6, "value": [1, 2, 3, 4, 4, 4]})
    out = summarise_seeds(rows, ["strategy"]).set_index("strategy")
    assert out.loc["a", "mean"] == 2.0 and out.loc["b", "ci95"] == 0.0 and out.loc["a", "n"] == 3
