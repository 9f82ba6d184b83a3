"""Optimisation settings of the model-agnostic trainer: :class:`TrainCfg` and the learning-rate schedule.

Kept apart from :mod:`misalignlab.train.trainer` so configs and the batched simulation trainer
(which shares :func:`lr_factor`) need not import the training loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine")
AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


@dataclass(frozen=True)
class TrainCfg:
    """Optimisation settings. ``steps`` is required: there is no endless default.

    ``schedule`` "cosine" decays the learning rate to 0 after ``warmup_steps`` of linear warmup;
    "constant" keeps it after warmup. ``batch_size`` is read by whoever builds the batch source;
    under torchrun it is the *global* batch, split evenly over the ranks. ``compile`` is a
    ``torch.compile`` mode (None: eager). ``check_every``: how often the host checks the loss for
    NaN/inf (1: before every update; larger avoids a GPU sync per step, and checkpoints are checked
    before they are written anyway). None: 1 on a CPU, 100 on a GPU.
    """

    steps: int
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    grad_clip: float | None = 2.0
    schedule: str = "constant"
    warmup_steps: int = 0
    seed: int = 0
    device: str = "cpu"
    amp_dtype: str | None = None
    compile: str | None = None
    check_every: int | None = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"train.steps and train.batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError("train.lr must be > 0, train.weight_decay and train.warmup_steps >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"train.optimizer {self.optimizer!r} unknown; valid: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"train.schedule {self.schedule!r} unknown; valid: {', '.join(SCHEDULES)}")
        if self.amp_dtype is not None and self.amp_dtype not in AMP_DTYPES:
            raise ValueError(f"train.amp_dtype {self.amp_dtype!r} unknown; valid: None, {', '.join(AMP_DTYPES)}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"train.grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise ValueError(f"train.compile {self.compile!r} unknown; valid: None, {', '.join(COMPILE_MODES)}")
        if self.check_every is not None and self.check_every < 1:
            raise ValueError(f"train.check_every must be >= 1, got {self.check_every}")


def ramp_fraction(progress: float, start: float, end: float) -> float:
    """0 before fraction ``start`` of training, 1 after ``end``, linear between: the shape of every
    loss-weight ramp (the simulation's λ, the image–text lab's alignment weight)."""
    return min(1.0, max(0.0, (progress - start) / (end - start)))


def lr_factor(step: int, cfg: TrainCfg) -> float:
    """Multiplier of ``cfg.lr`` for optimizer step ``step`` (0-based): linear warmup, then constant/cosine.

    Reads only ``steps``, ``warmup_steps`` and ``schedule``, so the batched simulation trainer
    (:class:`misalignlab.train.sim.SimTrainCfg`) shares it."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
