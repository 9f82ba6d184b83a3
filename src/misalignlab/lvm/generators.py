"""Frozen random invertible generators g_x, g_t (the paper's numerical simulation).

Three square, bias-free linear layers with LeakyReLU(0.2) between them. Each weight matrix has
entries U(−1, 1), columns rescaled to unit norm, and is redrawn until its condition number is at
most the ``cond_quantile`` quantile of ``n_reference`` such random matrices, so no layer is close
to singular. LeakyReLU with a positive slope is a bijection, hence the whole map is invertible;
:meth:`InvertibleMLP.inverse` computes the inverse exactly, which the tests use as proof.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class GeneratorCfg:
    n_layers: int = 3
    negative_slope: float = 0.2
    cond_quantile: float = 0.001
    n_reference: int = 25_000

    def __post_init__(self) -> None:
        if self.n_layers < 1:
            raise ValueError(f"generator.n_layers must be ≥ 1, got {self.n_layers}")
        if not 0.0 < self.negative_slope <= 1.0:
            raise ValueError(
                f"generator.negative_slope must be in (0, 1] to stay invertible, got {self.negative_slope}"
            )
        if not 0.0 < self.cond_quantile <= 1.0:
            raise ValueError(f"generator.cond_quantile must be in (0, 1], got {self.cond_quantile}")


def _random_unit_column_matrices(rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
    w = rng.uniform(-1.0, 1.0, size=(count, dim, dim))
    return w / np.linalg.norm(w, axis=1, keepdims=True)  # unit-norm columns


@lru_cache(maxsize=64)
def condition_threshold(dim: int, quantile: float, n_reference: int) -> float:
    """The ``quantile`` of condition numbers of ``n_reference`` random unit-column matrices (fixed seed)."""
    rng = np.random.default_rng(12345 + dim)
    conds = np.linalg.cond(_random_unit_column_matrices(rng, n_reference, dim))
    return float(np.quantile(conds, quantile))


def well_conditioned_matrix(dim: int, rng: np.random.Generator, cfg: GeneratorCfg) -> np.ndarray:
    """Draw random unit-column matrices until one's condition number is under the threshold."""
    limit = condition_threshold(dim, cfg.cond_quantile, cfg.n_reference)
    batch = max(64, int(4 / cfg.cond_quantile))
    while True:
        cands = _random_unit_column_matrices(rng, batch, dim)
        ok = np.flatnonzero(np.linalg.cond(cands) <= limit)
        if ok.size:
            return cands[ok[0]]


class InvertibleMLP:
    """x = W_L · σ(… σ(W_1 z)) with σ = LeakyReLU; frozen, no gradients."""

    def __init__(self, weights: list[Tensor], negative_slope: float) -> None:
        self.weights = weights
        self.negative_slope = negative_slope
        self.dim = weights[0].shape[0]

    @classmethod
    def random(cls, dim: int, rng: np.random.Generator, cfg: GeneratorCfg | None = None) -> InvertibleMLP:
        cfg = cfg or GeneratorCfg()
        mats = [torch.from_numpy(well_conditioned_matrix(dim, rng, cfg)).float() for _ in range(cfg.n_layers)]
        return cls(mats, cfg.negative_slope)

    def __call__(self, z: Tensor) -> Tensor:
        """(..., D) → (..., D)."""
        h = z
        for i, w in enumerate(self.weights):
            h = h @ w.T
            if i < len(self.weights) - 1:
                h = torch.nn.functional.leaky_relu(h, self.negative_slope)
        return h

    def inverse(self, x: Tensor) -> Tensor:
        """Exact inverse: undo each layer from the last (solve, then invert the LeakyReLU)."""
        h = x.double()
        for i, w in reversed(list(enumerate(self.weights))):
            if i < len(self.weights) - 1:
                h = torch.where(h >= 0, h, h / self.negative_slope)
            h = torch.linalg.solve(w.double(), h.T).T
        return h.to(x.dtype)
