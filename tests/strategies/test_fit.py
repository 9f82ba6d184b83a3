"""fit_strategy: the strategy's prepared pairs, weights and extras reach the trainer."""

import numpy as np
import pytest
import torch

from misalignlab.detect.base import DetectionResult
from misalignlab.models.pair_model import ModelCfg
from misalignlab.strategies import PairSet, build_strategy
from misalignlab.strategies.fit import StrategyBatches, fit_strategy
from misalignlab.train.pairs import LossCfg, PairTrainCfg
from misalignlab.train.trainer import TrainCfg


def _pairs(n=24):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(n, 32, 32, 3), dtype=np.uint8)
    caps = [f"a {['red', 'blue'][i % 2]} {['gear', 'bolt', 'nut'][i % 3]} on a grey belt" for i in range(n)]
    return PairSet.build(images, caps)


CFG = PairTrainCfg(TrainCfg(steps=2, batch_size=8), ModelCfg(code_dim=4, image_size=32, max_len=12), LossCfg(tau=0.1))


def test_batches_carry_extras_indexed_like_the_pairs():
    src = StrategyBatches(
        torch.arange(10)[:, None],
        torch.arange(10)[:, None],
        4,
        seed=0,
        weights=torch.arange(10).float(),
        extras={"group": torch.arange(10) * 10},
    )
    for _ in range(5):
        b = src.next_batch()
        assert torch.equal(b["group"], b["image"][:, 0] * 10) and torch.equal(b["weight"], b["image"][:, 0].float())


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("baseline", {}),
        ("filter", {"fraction": 0.25}),
        ("reweight", {}),
        ("robust", {}),
        ("augment", {"omit": {"background": 1.0}}),
        ("multipositive", {}),
    ],
)
def test_every_strategy_trains(name, kwargs):
    pairs = _pairs()
    found = DetectionResult("fake", pairs.pair_id, np.linspace(0, 1, len(pairs)).astype(np.float32))
    fitted = fit_strategy(build_strategy(name, **kwargs), pairs, CFG, found)
    assert len(fitted.pairs) == (18 if name == "filter" else 24)
    assert (fitted.pairs.weights is not None) == (name == "reweight")
    tokens = fitted.model.tokenize(["a red gear on a grey belt"])
    assert (tokens[0] > 1).sum() == 7  # no unknown word: words removed by augment keep their ids
