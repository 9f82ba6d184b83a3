"""The simulation lab's towers: every model of a sweep as one stacked pair of encoders.

:class:`SimStack` holds, for each :class:`Setting` (a bias setting and a seed), its latent variable
model and its image and text encoders, stacked so that one forward pass serves every model
(:class:`~misalignlab.models.stacked_mlp.StackedMLP` or the residual variant). Codes have the size
Theorem 4.1 asks for, |I_θ \\ I_ρ|, plus optional spare dimensions that training may fade out.
Training lives in :mod:`misalignlab.train.sim`; probes in :mod:`misalignlab.evaluate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from misalignlab.lvm.bias import BiasSpec
from misalignlab.lvm.model import LatentVariableModel, LVMCfg
from misalignlab.models.stacked_mlp import StackedMLP
from misalignlab.models.stacked_resmlp import StackedResMLP

OUTPUTS = ("linear", "tanh")
ARCHS = ("mlp", "resmlp")


@dataclass(frozen=True)
class SimEncoderCfg:
    """MLP encoders. ``hidden=()`` means the paper's widths [10d, 50d, 50d, 50d, 50d, 10d] (d = input size)."""

    hidden: tuple[int, ...] = ()
    negative_slope: float = 0.01
    code_dim: int = 0  # 0: |I_θ \ I_ρ|, the size Theorem 4.1 asks for (plus code_extra)
    code_extra: int = 0  # spare code dimensions beyond |I_θ \ I_ρ| when code_dim is 0
    whiten_inputs: bool = False  # fixed ZCA whitening of x and t, estimated once from fresh samples
    output: str = "linear"  # "linear" (paper: unbounded) or "tanh" (bounded codes, as Theorem 4.1 assumes)
    init: str = "uniform"  # "uniform" (nn.Linear default, the paper's code) or "kaiming"
    arch: str = "mlp"  # "mlp": the paper's plain MLP; "resmlp": pre-LayerNorm residual blocks of width hidden[0]

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"encoder.output must be one of {OUTPUTS}, got {self.output!r}")
        if self.arch not in ARCHS:
            raise ValueError(f"encoder.arch must be one of {ARCHS}, got {self.arch!r}")
        if self.code_extra < 0 or self.code_dim < 0:
            raise ValueError(
                f"encoder.code_dim and encoder.code_extra must be ≥ 0, got {self.code_dim}, {self.code_extra}"
            )
        if self.arch == "resmlp" and (not self.hidden or len(set(self.hidden)) != 1):
            raise ValueError(
                "encoder.arch='resmlp' needs encoder.hidden of one repeated width, e.g. [128, 128, 128, 128]"
            )

    def layer_sizes(self, in_dim: int, out_dim: int) -> list[int]:
        hidden = self.hidden or tuple(m * in_dim for m in (10, 50, 50, 50, 50, 10))
        return [in_dim, *hidden, out_dim]


@dataclass(frozen=True)
class Setting:
    """One model of a sweep: a bias setting and a seed."""

    bias: BiasSpec
    seed: int
    label: str = ""


def _encoder_stack(cfg: SimEncoderCfg, in_dims: list[int], out_dims: list[int], gens: list[torch.Generator]):
    """One tower for every model of a sweep, plain or residual."""
    if cfg.arch == "resmlp":
        return StackedResMLP(in_dims, out_dims, cfg.hidden[0], len(cfg.hidden), gens, cfg.negative_slope)
    sizes = [cfg.layer_sizes(i, o) for i, o in zip(in_dims, out_dims, strict=True)]
    return StackedMLP(sizes, gens, cfg.negative_slope, cfg.init)


def _zca(v: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and ZCA whitening matrix W (D, D) so that (v − μ) W has identity covariance."""
    v = v.double()
    mu = v.mean(0)
    cov = (v - mu).T @ (v - mu) / len(v)
    evals, evecs = torch.linalg.eigh(cov)
    w = evecs @ torch.diag(evals.clamp_min(1e-9).rsqrt()) @ evecs.T
    return mu.float(), w.float()


class SimStack:
    """The LVMs and stacked encoders of a sweep; ``encode`` gives each model's codes."""

    def __init__(self, settings: Sequence[Setting], lvm_cfg: LVMCfg, enc_cfg: SimEncoderCfg) -> None:
        if not settings:
            raise ValueError("a sweep needs at least one setting")
        self.settings = list(settings)
        self.lvms = [LatentVariableModel(lvm_cfg, s.bias, s.seed) for s in settings]
        self.code_dims = [enc_cfg.code_dim or len(s.bias.unbiased) + enc_cfg.code_extra for s in settings]
        init_gens = [torch.Generator().manual_seed(10_007 * s.seed + 1) for s in settings]
        self.f_x = _encoder_stack(enc_cfg, [m.image_dim for m in self.lvms], self.code_dims, init_gens)
        self.f_t = _encoder_stack(enc_cfg, [m.text_dim for m in self.lvms], self.code_dims, init_gens)
        self.text_pad = max(m.text_dim for m in self.lvms)
        # Spare dimensions (beyond |I_θ \ I_ρ|) give the optimiser room early on; training may fade
        # them out (train.spare_fade), leaving the code size Theorem 4.1 asks for.
        self.kept_dims = [min(len(s.bias.unbiased), n) for s, n in zip(settings, self.code_dims, strict=True)]
        self.spare_scale = 1.0
        dims = torch.arange(max(self.code_dims))
        self._spare = torch.stack(
            [(dims >= k) & (dims < n) for k, n in zip(self.kept_dims, self.code_dims, strict=True)]
        ).unsqueeze(1)  # (M, 1, n_max)
        self.output = enc_cfg.output
        self.whiten: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
        if enc_cfg.whiten_inputs:
            self.whiten = self._estimate_whitening()

    def _estimate_whitening(self, n: int = 20_000) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per-model ZCA whitening of image and text inputs from fresh samples (a fixed, frozen layer)."""
        stats = []
        for lvm, setting in zip(self.lvms, self.settings, strict=True):
            obs = lvm.sample(n, torch.Generator().manual_seed(10_007 * setting.seed + 3))
            stats.append((_zca(obs.x), _zca(obs.t)))
        pad = self.text_pad

        def padded(mu: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
            d = w.shape[0]
            return torch.nn.functional.pad(mu, (0, pad - d)), torch.nn.functional.pad(w, (0, pad - d, 0, pad - d))

        mx = torch.stack([sx[0] for sx, _ in stats]).unsqueeze(1)
        wx = torch.stack([sx[1] for sx, _ in stats])
        mt_wt = [padded(*st) for _, st in stats]
        mt = torch.stack([a for a, _ in mt_wt]).unsqueeze(1)
        wt = torch.stack([b for _, b in mt_wt])
        return mx, wx, mt, wt

    def to(self, device: torch.device | str) -> SimStack:
        """Move encoders, whitening and the latent variable models' fixed tensors to ``device`` (in place)."""
        self.f_x.to(device)
        self.f_t.to(device)
        if self.whiten is not None:
            self.whiten = tuple(w.to(device) for w in self.whiten)  # type: ignore[assignment]
        for lvm in self.lvms:
            lvm.g_x.weights = [w.to(device) for w in lvm.g_x.weights]
            lvm.g_t.weights = [w.to(device) for w in lvm.g_t.weights]
            lvm.selected = lvm.selected.to(device)
            lvm.sampler.perturbable = lvm.sampler.perturbable.to(device)
        return self

    def codes(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Both towers on stacked inputs (M, B, ·): (M, B, n_max) each; padded code dims are exactly 0."""
        if self.whiten is not None:
            mx, wx, mt, wt = self.whiten
            x, t = (x - mx) @ wx, (t - mt) @ wt
        a, b = self.f_x(x), self.f_t(t)
        if self.output == "tanh":
            a, b = torch.tanh(a), torch.tanh(b)
        if self.spare_scale != 1.0:
            scale = torch.where(self._spare.to(a.device), self.spare_scale, 1.0)
            a, b = a * scale, b * scale
        return a, b

    def image_codes_one(self, m: int, x: Tensor) -> Tensor:
        """Model m's image code for unpadded inputs (B, D_x) → (B, n_m)."""
        if self.whiten is not None:
            x = (x - self.whiten[0][m]) @ self.whiten[1][m]
        a = self.f_x.forward_one(m, x)
        a = torch.tanh(a) if self.output == "tanh" else a
        if self.spare_scale == 0.0:
            return a[:, : self.kept_dims[m]]
        return torch.where(self._spare[m, 0, : a.shape[1]], a * self.spare_scale, a)

    def sample(self, n: int, gens: Sequence[torch.Generator]) -> tuple[Tensor, Tensor, list]:
        """Stacked observations: x (M, n, D_x), t (M, n, D_t max, zero-padded), per-model latents."""
        obs = [m.sample(n, g) for m, g in zip(self.lvms, gens, strict=True)]
        x = torch.stack([o.x for o in obs])
        t = torch.stack([torch.nn.functional.pad(o.t, (0, self.text_pad - o.t.shape[1])) for o in obs])
        return x, t, [o.latents for o in obs]

    @torch.no_grad()
    def encode(self, x: Tensor, t: Tensor) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per-model unpadded codes (n, code_dim_m) of both towers; faded-out spare dimensions are dropped."""
        a, b = self.codes(x, t)
        dims = self.kept_dims if self.spare_scale == 0.0 else self.code_dims
        za = [a[m, :, :n].numpy() for m, n in enumerate(dims)]
        zb = [b[m, :, :n].numpy() for m, n in enumerate(dims)]
        return za, zb
