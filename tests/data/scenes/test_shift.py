"""Factor shifts: correlation planted in training, anti-correlation at test, input untouched."""

import numpy as np
import pytest

from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.data.scenes.render import sample_factors
from misalignlab.data.scenes.shift import FactorShift, apply_shifts


def test_follow_shift_plants_the_correlation_and_keeps_the_task_factor():
    f = sample_factors(2000, SceneCfg(size=32), np.random.default_rng(0))
    before = f.copy()
    train = apply_shifts(f, [FactorShift("background", "shape", strength=0.9)], np.random.default_rng(1))
    test = apply_shifts(f, [FactorShift("background", "shape", offset=1)], np.random.default_rng(1))
    assert f.equals(before) and train["shape"].equals(f["shape"])
    agree = np.mean(train["background"] == train["shape"] % 3)
    assert 0.9 < agree < 0.97  # 0.9 + 0.1 / 3
    assert np.all(test["background"] == (test["shape"] + 1) % 3)
    fixed = apply_shifts(f, [FactorShift("background", value=2)], np.random.default_rng(0))
    assert np.all(fixed["background"] == 2)


def test_shift_rejects_bad_factors():
    with pytest.raises(ValueError, match="discrete"):
        FactorShift("lighting")
    with pytest.raises(ValueError, match="itself"):
        FactorShift("shape", "shape")
