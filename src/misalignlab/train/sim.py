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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from misalignlab.models.losses import build_loss
from misalignlab.models.sim_stack import SimStack
from misalignlab.models.stacked_mlp import clip_per_model
from misalignlab.runs import atomic_write_bytes
from misalignlab.train.settings import lr_factor, ramp_fraction

log = logging.getLogger(__name__)

SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class SimTrainCfg:
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

    def __post_init__(self) -> None:
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
    cfg: SimTrainCfg,
    on_log: Callable[[int, np.ndarray], None] | None = None,
    checkpoint: Path | None = None,
    checkpoint_every: int = 1000,
) -> np.ndarray:
    """Train every model of ``stack`` for ``cfg.steps``; returns the loss curve (steps, M).

    With ``checkpoint``, the full state (weights, Adam, schedule, data generators, step) is written
    there atomically every ``checkpoint_every`` steps and, if the file exists, training resumes from
    it: a killed run continues to exactly the numbers of an uninterrupted one.
    """
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
