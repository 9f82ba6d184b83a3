import dataclasses

import pytest
import torch

from misalignlab.lvm.bias import BiasSpec
from misalignlab.lvm.latents import LatentCfg
from misalignlab.lvm.model import LatentVariableModel, LVMCfg


def _model(bias, dependent=False, seed=0):
    return LatentVariableModel(LVMCfg(latent=LatentCfg(dependent=dependent)), bias, seed)


@pytest.mark.parametrize("dependent", [False, True])
def test_omitted_factors_never_reach_the_text(dependent):
    m = _model(BiasSpec(selected=(0, 2, 5)), dependent)
    lat = m.sampler.sample(256, torch.Generator().manual_seed(0))
    t = m.observe(lat).t
    s = lat.s.clone()
    s[:, [1, 3, 4, 6, 7, 8, 9]] += 5.0  # change every omitted factor
    moved = dataclasses.replace(lat, s=s, s_tilde=torch.where(lat.perturbed, lat.s_tilde, s))
    assert torch.equal(m.observe(moved).t, t)
    assert not torch.equal(m.observe(moved).x, m.observe(lat).x)  # the image does see them


def test_perturbed_factors_change_with_the_given_probability():
    m = _model(BiasSpec(selected=tuple(range(10)), perturbed=(0, 3), perturb_prob=0.3))
    lat = m.sampler.sample(20_000, torch.Generator().manual_seed(1))
    changed = lat.s_tilde != lat.s
    rate = changed.float().mean(0)
    assert abs(rate[0].item() - 0.3) < 0.015 and abs(rate[3].item() - 0.3) < 0.015
    others = [i for i in range(10) if i not in (0, 3)]
    assert changed[:, others].sum() == 0  # faithful factors are copied exactly
    assert torch.equal(changed, lat.perturbed)


def test_image_and_text_dimensions():
    m = _model(BiasSpec(selected=tuple(range(8)), perturbed=(0, 1)))
    obs = m.sample(10, torch.Generator().manual_seed(0))
    assert obs.x.shape == (10, 15) and obs.t.shape == (10, 13)


def test_dimension_mismatch_raises():
    with pytest.raises(ValueError, match="outside 0..4"):
        LatentVariableModel(LVMCfg(latent=LatentCfg(n_semantic=5)), BiasSpec(selected=(0, 7)), seed=0)
    with pytest.raises(ValueError, match="latent.n_semantic"):
        LatentCfg(n_semantic=0)


def test_dependent_latents_are_correlated_and_seeded():
    a = _model(BiasSpec(selected=(0,)), dependent=True, seed=3)
    b = _model(BiasSpec(selected=(0,)), dependent=True, seed=3)
    assert torch.equal(a.sampler.chol_s, b.sampler.chol_s)
    s = a.sampler.sample(20_000, torch.Generator().manual_seed(0)).s
    corr = torch.corrcoef(s.T)
    assert (corr - torch.eye(10)).abs().max() > 0.2  # genuinely dependent
    assert torch.allclose(s.var(0), torch.ones(10), atol=0.05)  # unit variances
