"""Latents z = (s, m_x, m_t) and the biased text latents s̃ (the paper's latent variable model).

Independent case: s ~ N(0, I), m_x ~ N(0, I), m_t ~ N(0, I), ε ~ N(0, I). Dependent case: each
covariance is a Wishart draw (df = dimension, scale I), drawn once per model seed. We rescale each
Wishart draw to unit variances (a correlation matrix): the dependence structure is the paper's, the
input scale matches the independent case, and R² is invariant to that scaling. The paper's code
draws Σ_s and Σ_ε (and Σ_mx, Σ_mt) from the same seed, making them equal; we draw them
independently (as in the paper's code).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from misalignlab.lvm.bias import BiasSpec


@dataclass(frozen=True)
class LatentCfg:
    n_semantic: int = 10
    n_image: int = 5
    n_text: int = 5
    dependent: bool = False

    def __post_init__(self) -> None:
        for name in ("n_semantic", "n_image", "n_text"):
            value = getattr(self, name)
            if value < (1 if name == "n_semantic" else 0):
                raise ValueError(f"latent.{name} must be ≥ {1 if name == 'n_semantic' else 0}, got {value}")


def wishart_correlation(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A Wishart(df = dim, scale I) draw rescaled to unit diagonal."""
    g = rng.standard_normal((dim, dim))
    cov = g @ g.T + 1e-6 * np.eye(dim)
    d = np.sqrt(np.diag(cov))
    return cov / np.outer(d, d)


@dataclass(frozen=True)
class LatentSample:
    """One batch of latents. Shapes: s, s_tilde (B, n_s); m_x (B, n_x); m_t (B, n_t); perturbed (B, n_s) bool."""

    s: Tensor
    s_tilde: Tensor
    m_x: Tensor
    m_t: Tensor
    perturbed: Tensor


class LatentSampler:
    """Samples (s, s̃, m_x, m_t) for one bias setting with fixed covariances."""

    def __init__(self, cfg: LatentCfg, bias: BiasSpec, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.bias = bias.check(cfg.n_semantic)

        def chol(dim: int) -> Tensor | None:
            if not cfg.dependent or dim == 0:
                return None
            return torch.from_numpy(np.linalg.cholesky(wishart_correlation(dim, rng))).float()

        self.chol_s = chol(cfg.n_semantic)
        self.chol_mx = chol(cfg.n_image)
        self.chol_mt = chol(cfg.n_text)
        self.chol_eps = chol(cfg.n_semantic)
        mask = torch.zeros(cfg.n_semantic, dtype=torch.bool)
        mask[list(bias.perturbed)] = True
        self.perturbable = mask

    @staticmethod
    def _gauss(n: int, dim: int, chol: Tensor | None, gen: torch.Generator) -> Tensor:
        z = torch.randn(n, dim, generator=gen, device=gen.device)
        return z if chol is None else z @ chol.to(z.device).T

    def sample(self, n: int, gen: torch.Generator) -> LatentSample:
        c = self.cfg
        s = self._gauss(n, c.n_semantic, self.chol_s, gen)
        m_x = self._gauss(n, c.n_image, self.chol_mx, gen)
        m_t = self._gauss(n, c.n_text, self.chol_mt, gen)
        eps = self._gauss(n, c.n_semantic, self.chol_eps, gen)
        coin = torch.rand(n, c.n_semantic, generator=gen, device=gen.device) < self.bias.perturb_prob
        perturbed = coin & self.perturbable.to(coin.device)  # (B, n_s): only I_ρ coordinates may change
        s_tilde = torch.where(perturbed, s + eps, s)
        return LatentSample(s=s, s_tilde=s_tilde, m_x=m_x, m_t=m_t, perturbed=perturbed)
