import numpy as np
import torch

from misalignlab.lvm.generators import GeneratorCfg, InvertibleMLP, condition_threshold


def test_generator_is_numerically_invertible():
    g = InvertibleMLP.random(15, np.random.default_rng(0))
    z = torch.randn(5000, 15, generator=torch.Generator().manual_seed(1)) * 3
    x = g(z)
    assert (g.inverse(x) - z).abs().max() < 1e-3
    # injective in practice: distinct inputs never collide
    assert torch.cdist(x[:500], x[:500]).add(torch.eye(500) * 1e9).min() > 0


def test_layers_respect_condition_number_limit_and_unit_columns():
    cfg = GeneratorCfg()
    g = InvertibleMLP.random(7, np.random.default_rng(3), cfg)
    limit = condition_threshold(7, cfg.cond_quantile, cfg.n_reference)
    for w in g.weights:
        assert np.linalg.cond(w.double().numpy()) <= limit + 1e-6
        np.testing.assert_allclose(np.linalg.norm(w.numpy(), axis=0), 1.0, atol=1e-5)


def test_same_seed_same_generator():
    a = InvertibleMLP.random(6, np.random.default_rng(5))
    b = InvertibleMLP.random(6, np.random.default_rng(5))
    c = InvertibleMLP.random(6, np.random.default_rng(6))
    assert all(torch.equal(x, y) for x, y in zip(a.weights, b.weights))
    assert not torch.equal(a.weights[0], c.weights[0])
