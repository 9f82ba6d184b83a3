"""M independent residual MLPs with LayerNorm, stacked like :class:`StackedMLP`.

x → Linear(in, w) → [h + Linear(LeakyReLU(Linear(LN(h))))] × blocks → LN → Linear(w, out).
All models share the width ``w`` (so LayerNorm needs no masking); input and output sizes may
differ and are padded with masked weights, exactly as in :class:`StackedMLP`. Pre-norm residual
blocks keep gradients well scaled through depth: on the simulation this reaches in 1.5k steps
what the paper's plain 7-layer MLP does not reach in 4k (see RESULTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from misalignlab.models.stacked_mlp import _pad_to


def _linear_init(o: int, i: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    bound = 1.0 / math.sqrt(i)
    return (torch.rand(o, i, generator=gen) * 2 - 1) * bound, (torch.rand(o, generator=gen) * 2 - 1) * bound


def _layer_norm(h: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
    """LayerNorm over the last axis with per-model affine parameters (M, w)."""
    h = torch.nn.functional.layer_norm(h, h.shape[-1:])
    return h * gamma.unsqueeze(1) + beta.unsqueeze(1)


class StackedResMLP(nn.Module):
    """Forward (M, B, in_max) → (M, B, out_max)."""

    def __init__(
        self,
        in_dims: Sequence[int],
        out_dims: Sequence[int],
        width: int,
        blocks: int,
        generators: Sequence[torch.Generator],
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        if not (len(in_dims) == len(out_dims) == len(generators)):
            raise ValueError("in_dims, out_dims and generators need one entry per stacked model")
        self.in_dims, self.out_dims = list(in_dims), list(out_dims)
        self.width, self.n_blocks, self.negative_slope = width, blocks, negative_slope
        in_max, out_max = max(in_dims), max(out_dims)
        per_model = [self._init_one(i, o, gen) for i, o, gen in zip(in_dims, out_dims, generators, strict=True)]
        shapes = {"w_in": (width, in_max), "b_in": (width,), "w_out": (out_max, width), "b_out": (out_max,)}
        self.params = nn.ParameterDict()
        for name, tensors in zip(per_model[0], zip(*[p.values() for p in per_model], strict=True), strict=True):
            target = shapes.get(name, tensors[0].shape)
            self.params[name] = nn.Parameter(torch.stack([_pad_to(t, tuple(target)) for t in tensors]))
        masks = {
            "w_in": [_pad_to(torch.ones(width, i), (width, in_max)) for i in in_dims],
            "w_out": [_pad_to(torch.ones(o, width), (out_max, width)) for o in out_dims],
            "b_out": [_pad_to(torch.ones(o), (out_max,)) for o in out_dims],
        }
        for name, ms in masks.items():
            self.register_buffer(f"mask_{name}", torch.stack(ms), persistent=False)

    def _init_one(self, in_dim: int, out_dim: int, gen: torch.Generator) -> dict[str, Tensor]:
        w = self.width
        p: dict[str, Tensor] = {}
        p["w_in"], p["b_in"] = _linear_init(w, in_dim, gen)
        for k in range(self.n_blocks):
            p[f"ln{k}_g"], p[f"ln{k}_b"] = torch.ones(w), torch.zeros(w)
            p[f"w{k}a"], p[f"b{k}a"] = _linear_init(w, w, gen)
            p[f"w{k}b"], p[f"b{k}b"] = _linear_init(w, w, gen)
        p["lnout_g"], p["lnout_b"] = torch.ones(w), torch.zeros(w)
        p["w_out"], p["b_out"] = _linear_init(out_dim, w, gen)
        return p

    @property
    def n_models(self) -> int:
        return len(self.in_dims)

    def _run(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        def lin(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
            return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))

        h = lin(x, p["w_in"], p["b_in"])  # (M, B, w)
        for k in range(self.n_blocks):
            z = _layer_norm(h, p[f"ln{k}_g"], p[f"ln{k}_b"])
            z = torch.nn.functional.leaky_relu(lin(z, p[f"w{k}a"], p[f"b{k}a"]), self.negative_slope)
            h = h + lin(z, p[f"w{k}b"], p[f"b{k}b"])
        return lin(_layer_norm(h, p["lnout_g"], p["lnout_b"]), p["w_out"], p["b_out"])

    def _masked(self) -> dict[str, Tensor]:
        p = dict(self.params.items())
        for name in ("w_in", "w_out", "b_out"):
            p[name] = p[name] * getattr(self, f"mask_{name}")
        return p

    def forward(self, x: Tensor) -> Tensor:
        return self._run(x, self._masked())

    def slice_state(self, m: int) -> dict[str, Tensor]:
        """Model m's unpadded parameters."""
        out = {}
        for name, t in self.params.items():
            v = t[m]
            if name == "w_in":
                v = v[:, : self.in_dims[m]]
            elif name == "w_out":
                v = v[: self.out_dims[m]]
            elif name == "b_out":
                v = v[: self.out_dims[m]]
            out[name] = v.detach().clone()
        return out

    def forward_one(self, m: int, x: Tensor) -> Tensor:
        """Model m alone on unpadded input (B, in_m) → (B, out_m)."""
        p = {k: v.unsqueeze(0) for k, v in self.slice_state(m).items()}
        return self._run(x.unsqueeze(0), p)[0]
