"""M independent MLPs stored as stacked, padded weights and run with batched matmuls.

Model m has layer sizes [in_m, h_m1, …, out_m]; all models share the depth. Weights are padded
to the largest size at each position and multiplied by fixed 0/1 masks in ``forward``, so padded
entries get exactly zero gradient and stay zero under Adam: each slice computes exactly what the
same MLP built alone computes. Initialisation follows ``nn.Linear`` (uniform ±1/√fan_in, fan_in
the model's true input size), drawn from each model's own generator, so a model's initial weights
do not depend on which other models share the stack.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _pad_to(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    out = torch.zeros(shape, dtype=t.dtype)
    out[tuple(slice(0, s) for s in t.shape)] = t
    return out


INITS = ("uniform", "kaiming")


def _init_layer(o: int, i: int, gen: torch.Generator, init: str, slope: float) -> tuple[Tensor, Tensor]:
    """``uniform``: nn.Linear's default, U(±1/√fan_in) for weights and biases (the paper's code).
    ``kaiming``: N(0, gain²/fan_in) weights with the LeakyReLU gain and zero biases, which keeps
    the activation scale through deep stacks instead of shrinking it about 6× per layer."""
    if init == "uniform":
        bound = 1.0 / math.sqrt(i)
        w = (torch.rand(o, i, generator=gen) * 2 - 1) * bound
        b = (torch.rand(o, generator=gen) * 2 - 1) * bound
        return w, b
    gain = math.sqrt(2.0 / (1.0 + slope**2))
    return torch.randn(o, i, generator=gen) * gain / math.sqrt(i), torch.zeros(o)


class StackedMLP(nn.Module):
    """Forward (M, B, in_max) → (M, B, out_max); LeakyReLU between layers, linear output."""

    def __init__(
        self,
        layer_sizes: Sequence[Sequence[int]],
        generators: Sequence[torch.Generator],
        negative_slope: float = 0.01,
        init: str = "uniform",
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        depths = {len(s) for s in layer_sizes}
        if len(depths) != 1:
            raise ValueError(f"all stacked models need the same depth, got layer counts {sorted(depths)}")
        if len(generators) != len(layer_sizes):
            raise ValueError("one torch.Generator per stacked model is required")
        self.layer_sizes = [tuple(int(v) for v in s) for s in layer_sizes]
        self.negative_slope = negative_slope
        n_layers = len(self.layer_sizes[0]) - 1
        self.max_sizes = [max(s[i] for s in self.layer_sizes) for i in range(n_layers + 1)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for layer in range(n_layers):
            w_list, b_list, wm_list, bm_list = [], [], [], []
            fo, fi = self.max_sizes[layer + 1], self.max_sizes[layer]
            for sizes, gen in zip(self.layer_sizes, generators, strict=True):
                o, i = sizes[layer + 1], sizes[layer]
                w, b = _init_layer(o, i, gen, init, negative_slope)
                w_list.append(_pad_to(w, (fo, fi)))
                b_list.append(_pad_to(b, (fo,)))
                wm_list.append(_pad_to(torch.ones(o, i), (fo, fi)))
                bm_list.append(_pad_to(torch.ones(o), (fo,)))
            self.weights.append(nn.Parameter(torch.stack(w_list)))  # (M, out, in)
            self.biases.append(nn.Parameter(torch.stack(b_list)))  # (M, out)
            self.register_buffer(f"wmask{layer}", torch.stack(wm_list), persistent=False)
            self.register_buffer(f"bmask{layer}", torch.stack(bm_list), persistent=False)

    @property
    def n_models(self) -> int:
        return len(self.layer_sizes)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            w = w * getattr(self, f"wmask{layer}")
            b = b * getattr(self, f"bmask{layer}")
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))  # (M, B, out)
            if layer < last:
                h = torch.nn.functional.leaky_relu(h, self.negative_slope)
        return h

    def forward_one(self, m: int, x: Tensor) -> Tensor:
        """Model m alone on unpadded input (B, in_m) → (B, out_m)."""
        st = self.slice_state(m)
        h = x
        last = len(self.weights) - 1
        for layer in range(last + 1):
            h = h @ st[f"w{layer}"].T + st[f"b{layer}"]
            if layer < last:
                h = torch.nn.functional.leaky_relu(h, self.negative_slope)
        return h

    def slice_state(self, m: int) -> dict[str, Tensor]:
        """Model m's unpadded weights, e.g. to compare with a model trained alone."""
        sizes = self.layer_sizes[m]
        out: dict[str, Tensor] = {}
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            out[f"w{layer}"] = w[m, : sizes[layer + 1], : sizes[layer]].detach().clone()
            out[f"b{layer}"] = b[m, : sizes[layer + 1]].detach().clone()
        return out


def per_model_grad_norm(params: Sequence[Tensor]) -> Tensor:
    """‖g_m‖₂ over all parameters of each stacked model: (M,)."""
    sq = None
    for p in params:
        if p.grad is None:
            continue
        g = p.grad.reshape(p.grad.shape[0], -1).pow(2).sum(dim=1)
        sq = g if sq is None else sq + g
    if sq is None:
        raise ValueError("no gradients to clip")
    return sq.sqrt()


def clip_per_model(params: Sequence[Tensor], max_norm: float) -> Tensor:
    """Clip each stacked model's gradient to ``max_norm`` independently (as clip_grad_norm_ per model)."""
    norms = per_model_grad_norm(params)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # (M,)
    for p in params:
        if p.grad is not None:
            p.grad.mul_(scale.view(-1, *([1] * (p.grad.dim() - 1))))
    return norms
