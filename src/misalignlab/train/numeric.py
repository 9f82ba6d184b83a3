"""Batched multi-configuration contrastive training on the latent variable model.

A sweep (bias settings × seeds) trains all its models at once: encoders are :class:`StackedMLP`
stacks, every step draws fresh latents for each model from its own generator, and one backward
pass updates them all. Adam is elementwise and gradients are clipped per model, so each model
follows exactly the trajectory it would follow trained alone (tested).

On a GPU (``train.device``) latents are drawn there by device generators (other numbers than a
CPU's) and losses stay there until logged: no host sync per step. Probes run back on the CPU.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from misalignlab.lvm.bias import BiasSpec
from misalignlab.lvm.model import LatentVariableModel, LVMCfg
from misalignlab.models.losses import build_loss
from misalignlab.models.stacked_mlp import StackedMLP, clip_per_model
from misalignlab.models.stacked_resmlp import StackedResMLP
from misalignlab.runs import atomic_write_bytes
from misalignlab.train.settings import lr_factor, ramp_fraction

log = logging.getLogger(__name__)

SCHEDULES = ("constant", "cosine")
OUTPUTS = ("linear", "tanh")
ARCHS = ("mlp", "resmlp")


@dataclass(frozen=True)
class EncoderCfg:
    """MLP encoders. ``hidden=()`` means the paper's widths [10d, 50d, 50d, 50d, 50d, 10d] (d = input size)."""

    hidden: tuple[int, ...] = ()
    negative_slope: float = 0.01
    code_dim: int = 0  # 0: |I_θ \ I_ρ|, the size Theorem 4.1 asks for (plus code_extra)
    code_extra: int = 0  # spare code dimensions beyond |I_θ \ I_ρ| when code_dim is 0
    whiten_inputs: bool = False  # fixed ZCA whitening of x and t, estimated once from fresh samples
    output: str = "linear"  # "linear" (paper: unbounded) or "tanh" (bounded codes, as Theorem 4.1 assumes)
    init: str = "uniform"  # "uniform" (nn.Linear default, the paper's code) or "kaiming"
    arch: str = "mlp"  # "mlp": the paper's plain MLP; "resmlp": pre-LayerNorm residual blocks of width hidden[0]

    def check(self) -> EncoderCfg:
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
        return self

    def layer_sizes(self, in_dim: int, out_dim: int) -> list[int]:
        hidden = self.hidden or tuple(m * in_dim for m in (10, 50, 50, 50, 50, 10))
        return [in_dim, *hidden, out_dim]


@dataclass(frozen=True)
class NumericTrainCfg:
    steps: int
    batch_size: int = 6144
    lr: float = 1e-4
    schedule: str = "constant"
    warmup_steps: int = 0
    grad_clip: float = 2.0
    loss: str = "sqeuclid_independent"
    tau: float = 1.0  # clip_cross_modal only
    similarity: str = "neg_sq_euclid"  # clip_cross_modal only: neg_sq_euclid (paper theory) or cosine
    independent_negatives: bool = True
    log_every: int = 100
    align_weight: float = 1.0  # sqeuclid_independent only: λ on the alignment term (1 = paper)
    align_weight_final: float = 0.0  # > 0: λ ramps linearly from align_weight to this …
    align_ramp: tuple[float, float] = (0.0, 1.0)  # … between these fractions of training, then holds
    spare_fade: tuple[float, float] = (0.0, 0.0)  # (start, end): spare code dims fade 1 → 0 there; (0, 0): off
    device: str = "cpu"  # "cuda": train (and sample latents) on the GPU

    def build_loss(self):
        if self.loss == "clip_cross_modal":
            return build_loss(self.loss, tau=self.tau, similarity=self.similarity)
        if self.loss == "sqeuclid_independent":
            return build_loss(self.loss, align_weight=self.align_weight)
        return build_loss(self.loss)

    def check(self) -> NumericTrainCfg:
        if self.steps < 1:
            raise ValueError(f"train.steps must be ≥ 1, got {self.steps}")
        if self.batch_size < 2:
            raise ValueError(f"train.batch_size must be ≥ 2, got {self.batch_size}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"train.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.lr <= 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        start, end = self.align_ramp
        if not 0.0 <= start < end <= 1.0:
            raise ValueError(f"train.align_ramp must be (start, end) with 0 ≤ start < end ≤ 1, got {self.align_ramp}")
        fade = tuple(self.spare_fade)
        if fade != (0.0, 0.0) and not 0.0 <= fade[0] < fade[1] <= 1.0:
            raise ValueError(
                f"train.spare_fade must be (start, end) with 0 ≤ start < end ≤ 1, or (0, 0), got {self.spare_fade}"
            )
        return self

    def spare_scale_at(self, step: int) -> float:
        """Factor on the spare code dimensions at ``step``: 1 until the fade starts, 0 after it ends."""
        if tuple(self.spare_fade) == (0.0, 0.0):
            return 1.0
        return 1.0 - ramp_fraction(step / max(1, self.steps - 1), *self.spare_fade)

    def align_weight_at(self, step: int) -> float:
        """λ at ``step``: ``align_weight`` until the ramp starts, then linear to ``align_weight_final``."""
        if self.align_weight_final <= 0:
            return self.align_weight
        frac = ramp_fraction(step / max(1, self.steps - 1), *self.align_ramp)
        return self.align_weight + frac * (self.align_weight_final - self.align_weight)


@dataclass(frozen=True)
class Setting:
    """One model of a sweep: a bias setting and a seed."""

    bias: BiasSpec
    seed: int
    label: str = ""


def _encoder_stack(cfg: EncoderCfg, in_dims: list[int], out_dims: list[int], gens: list[torch.Generator]):
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

    def __init__(self, settings: Sequence[Setting], lvm_cfg: LVMCfg, enc_cfg: EncoderCfg) -> None:
        if not settings:
            raise ValueError("a sweep needs at least one setting")
        self.settings = list(settings)
        self.lvms = [LatentVariableModel(lvm_cfg, s.bias, s.seed) for s in settings]
        self.code_dims = [enc_cfg.code_dim or len(s.bias.unbiased) + enc_cfg.code_extra for s in settings]
        init_gens = [torch.Generator().manual_seed(10_007 * s.seed + 1) for s in settings]
        enc_cfg.check()
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
        self.output = enc_cfg.check().output
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


def _save_checkpoint(path: Path, stack: SimStack, opt, sched, gens, step: int, curve: np.ndarray) -> None:
    state = {
        "f_x": stack.f_x.state_dict(),
        "f_t": stack.f_t.state_dict(),
        "opt": opt.state_dict(),
        "sched": sched.state_dict(),
        "gens": [g.get_state() for g in gens],
        "step": step,
        "curve": torch.from_numpy(curve[:step].copy()),
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path, stack: SimStack, opt, sched, gens, curve: np.ndarray) -> int:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"checkpoint {path} is unreadable ({exc}); delete it to start over") from exc
    stack.f_x.load_state_dict(state["f_x"])
    stack.f_t.load_state_dict(state["f_t"])
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    for g, g_state in zip(gens, state["gens"], strict=True):
        g.set_state(g_state)
    step = int(state["step"])
    curve[:step] = state["curve"].numpy()
    return step


def train_stack(
    stack: SimStack,
    cfg: NumericTrainCfg,
    on_log: Callable[[int, np.ndarray], None] | None = None,
    checkpoint: Path | None = None,
    checkpoint_every: int = 1000,
) -> np.ndarray:
    """Train every model of ``stack`` for ``cfg.steps``; returns the loss curve (steps, M).

    With ``checkpoint``, the full state (weights, Adam, schedule, data generators, step) is written
    there atomically every ``checkpoint_every`` steps and, if the file exists, training resumes from
    it: a killed run continues to exactly the numbers of an uninterrupted one.
    """
    cfg.check()
    loss_fn = cfg.build_loss()
    stack.to(cfg.device)
    params = list(stack.f_x.parameters()) + list(stack.f_t.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, cfg))
    gens = [torch.Generator(device=cfg.device).manual_seed(10_007 * s.seed + 2) for s in stack.settings]
    curve = np.zeros((cfg.steps, len(stack.settings)), dtype=np.float64)
    start = 0
    if checkpoint is not None and checkpoint.exists():
        start = _load_checkpoint(checkpoint, stack, opt, sched, gens, curve)
        log.info("resumed from %s at step %d", checkpoint, start)
    pending, copied = torch.zeros(cfg.steps, len(stack.settings), device=cfg.device), start  # losses on the device

    def copy_curve(upto: int) -> None:  # one device→host copy per log or checkpoint, not per step
        nonlocal copied
        curve[copied:upto] = pending[copied:upto].double().cpu().numpy()
        copied = upto

    for step in range(start, cfg.steps):
        if cfg.align_weight_final > 0 and hasattr(loss_fn, "align_weight"):
            loss_fn.align_weight = cfg.align_weight_at(step)
        stack.spare_scale = cfg.spare_scale_at(step)
        x, t, _ = stack.sample(cfg.batch_size, gens)
        a, b = stack.codes(x, t)  # (M, B, n_max); padded code dims are exactly 0
        kwargs = {}
        if cfg.independent_negatives and cfg.loss == "sqeuclid_independent":
            x2, t2, _ = stack.sample(cfg.batch_size, gens)
            a2, b2 = stack.codes(x2, t2)
            kwargs = {"img_neg": a2, "txt_neg": b2}
        per_model = loss_fn(a, b, **kwargs)  # (M,)
        opt.zero_grad(set_to_none=True)
        per_model.sum().backward()  # models share no parameters: each gets its own gradient
        if cfg.grad_clip > 0:
            clip_per_model(params, cfg.grad_clip)
        opt.step()
        sched.step()
        pending[step] = per_model.detach()
        if on_log is not None and ((step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps):
            copy_curve(step + 1)
            on_log(step + 1, curve[step])
        if checkpoint is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == cfg.steps):
            copy_curve(step + 1)
            _save_checkpoint(checkpoint, stack, opt, sched, gens, step + 1, curve)
    copy_curve(cfg.steps)
    stack.to("cpu")  # probes and downstream tasks read codes as numpy arrays
    return curve
