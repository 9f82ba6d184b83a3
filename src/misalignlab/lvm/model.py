"""The full latent variable model: latents → image x = g_x(s, m_x), text t = g_t(s̃_{I_θ}, m_t).

Omitted factors (outside I_θ) never enter the text generator; perturbed ones enter as s̃.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from misalignlab.lvm.bias import BiasSpec
from misalignlab.lvm.generators import GeneratorCfg, InvertibleMLP
from misalignlab.lvm.latents import LatentCfg, LatentSample, LatentSampler


@dataclass(frozen=True)
class LVMCfg:
    latent: LatentCfg = field(default_factory=LatentCfg)
    generator: GeneratorCfg = field(default_factory=GeneratorCfg)


@dataclass(frozen=True)
class Observation:
    """x (B, n_s + n_x); t (B, |I_θ| + n_t); the latents that made them."""

    x: Tensor
    t: Tensor
    latents: LatentSample


class LatentVariableModel:
    """One bias setting with its own frozen generators, seeded."""

    def __init__(self, cfg: LVMCfg, bias: BiasSpec, seed: int) -> None:
        self.cfg = cfg
        self.bias = bias.check(cfg.latent.n_semantic)
        rng = np.random.default_rng(seed)
        self.sampler = LatentSampler(cfg.latent, bias, rng)
        self.g_x = InvertibleMLP.random(self.image_dim, rng, cfg.generator)
        self.g_t = InvertibleMLP.random(self.text_dim, rng, cfg.generator)
        self.selected = torch.tensor(self.bias.selected, dtype=torch.long)

    @property
    def image_dim(self) -> int:
        return self.cfg.latent.n_semantic + self.cfg.latent.n_image

    @property
    def text_dim(self) -> int:
        return len(self.bias.selected) + self.cfg.latent.n_text

    def observe(self, lat: LatentSample) -> Observation:
        x = self.g_x(torch.cat([lat.s, lat.m_x], dim=-1))
        t = self.g_t(torch.cat([lat.s_tilde[:, self.selected], lat.m_t], dim=-1))
        return Observation(x=x, t=t, latents=lat)

    def sample(self, n: int, gen: torch.Generator) -> Observation:
        return self.observe(self.sampler.sample(n, gen))
