"""A model-agnostic trainer (minGPT style), extended by callbacks.

The trainer knows nothing about images, captions or misalignment. It repeatedly takes a batch
from a *source*, calls ``objective.training_step(batch)``, sums the returned entries whose key ends
in ``_loss``, and steps an Adam/AdamW optimizer with optional gradient clipping and a
warmup/cosine schedule. Everything else (logging, progress, checkpoints, evaluation) is a
:class:`Callback` (the standard ones live in :mod:`misalignlab.train.callbacks`).

Determinism: :func:`seed_everything` seeds python, numpy and torch; a checkpoint
(:mod:`misalignlab.train.checkpoint`) holds everything a resumed run needs to continue with the
same numbers as an uninterrupted one.

Scale: under ``torchrun`` (a :class:`~misalignlab.train.distributed.Dist` with more than one rank)
the objective is wrapped in ``DistributedDataParallel`` after its batch norms are made global;
every rank runs the same steps on its shard of each global batch, callbacks marked ``main_only``
(logs, progress, checkpoints) run on rank 0 only, and logged scalars are averaged over ranks. On a
GPU: ``amp_dtype`` autocast, optional ``torch.compile`` and no host synchronisation inside a step
(logged values stay 0-d tensors until a callback reads them; non-finite losses are checked every
``check_every`` steps and before each checkpoint).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from misalignlab.config import to_dict
from misalignlab.train.checkpoint import (  # noqa: F401  (re-exported: the trainer's public API)
    CHECKPOINT_DIR,
    CHECKPOINT_FORMAT,
    CHECKPOINT_KEYS,
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from misalignlab.train.distributed import Dist, all_reduce_mean, convert_batchnorm, current
from misalignlab.train.settings import AMP_DTYPES, COMPILE_MODES, OPTIMIZERS, SCHEDULES, TrainCfg, lr_factor  # noqa: F401

log = logging.getLogger(__name__)


class Objective(Protocol):
    """What the trainer optimises: an ``nn.Module`` whose ``training_step`` returns named tensors."""

    def training_step(self, batch: Mapping[str, Tensor]) -> Mapping[str, Tensor]: ...


class BatchSource(Protocol):
    """An endless, seeded batch stream whose position can be saved and restored."""

    def next_batch(self) -> dict[str, Tensor]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class Callback:
    """Hooks called by :class:`Trainer`; subclasses override what they need.

    ``main_only`` callbacks (writers: logs, progress, checkpoints) run on rank 0 only. ``logs``
    values are floats or 0-d tensors (read with ``float(v)``; reading one waits for the device).
    """

    main_only: ClassVar[bool] = False

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None:
        pass

    def on_fit_end(self, trainer: Trainer) -> None:
        pass


class _Step(nn.Module):
    """``forward(batch) = objective.training_step(batch)``: what DDP and ``torch.compile`` wrap."""

    def __init__(self, objective: nn.Module) -> None:
        super().__init__()
        self.objective = objective

    def forward(self, batch: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        return self.objective.training_step(batch)  # type: ignore[operator]


@dataclass
class FitResult:
    """What one ``fit`` call did: the final step, its per-step total losses and the last logs."""

    step: int
    losses: list[float] = field(default_factory=list)
    last: dict[str, float] = field(default_factory=dict)


class Trainer:
    """Runs ``cfg.steps`` optimisation steps of an objective on a batch source.

    Callbacks run in list order after every step; one may call :meth:`stop` to end early. The
    objective, optimizer, scheduler and source are attributes during ``fit`` so callbacks can read
    them (``trainer.state_dict()`` is what a checkpoint holds). ``dist`` (default: the current
    torchrun job, if any) says whether to train data-parallel; pass ``LOCAL`` to train alone on
    one rank of a job.
    """

    def __init__(self, cfg: TrainCfg, callbacks: Sequence[Callback] = (), dist: Dist | None = None) -> None:
        self.cfg = cfg
        self.dist = dist or current()
        self.callbacks = [cb for cb in callbacks if self.dist.is_main or not cb.main_only]
        self.device = torch.device(cfg.device)
        self.step = 0
        self.objective: nn.Module | None = None
        self.source: BatchSource | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self._forward: nn.Module | None = None
        self._losses: Tensor | None = None  # (steps,) total loss per step, on the device
        self._checked = 0  # steps whose loss the host has checked for NaN/inf
        self._check_every = cfg.check_every or (100 if self.device.type == "cuda" else 1)
        self._stop = False

    def stop(self) -> None:
        """Ask the loop to end after the current step's callbacks."""
        self._stop = True

    def _build_optimizer(self, objective: nn.Module) -> None:
        params = [p for p in objective.parameters() if p.requires_grad]
        opt_cls = torch.optim.AdamW if self.cfg.optimizer == "adamw" else torch.optim.Adam
        fused = {"fused": True} if self.device.type == "cuda" else {}  # one kernel per update, not per tensor
        self.optimizer = opt_cls(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, **fused)
        cfg = self.cfg
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, cfg))

    def _wrap(self, objective: nn.Module) -> nn.Module:
        """The module called each step: the objective, data-parallel across ranks and/or compiled."""
        step: nn.Module = _Step(objective)
        if self.dist.active:
            ids = None  # CPU: DDP takes no device ids
            if self.device.type == "cuda":
                ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()]
            step = nn.parallel.DistributedDataParallel(step, device_ids=ids)
        if self.cfg.compile is not None:
            step = torch.compile(step, mode=self.cfg.compile)  # type: ignore[assignment]
        return step

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly."""
        assert self.objective is not None and self.optimizer is not None and self.scheduler is not None
        assert self.source is not None
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "source": self.source.state_dict(),
            "rng": rng_state(),
            "train_cfg": to_dict(self.cfg),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        assert self.objective is not None and self.optimizer is not None and self.scheduler is not None
        assert self.source is not None
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.source.load_state_dict(state["source"])
        set_rng_state(state["rng"])
        self.step = int(state["step"])

    def fit(self, objective: nn.Module, source: BatchSource, resume: Path | None = None) -> FitResult:
        """Train ``objective`` (in place) until ``cfg.steps``; continue from checkpoint ``resume`` if given."""
        if not callable(getattr(objective, "training_step", None)):
            raise TypeError(f"{type(objective).__name__} has no training_step(batch) method")
        self.objective = objective.to(self.device).train()
        if self.dist.active:  # before the optimizer is built: conversion makes new parameters
            convert_batchnorm(objective, self.dist, self.device.type)
        self.source = source
        self._stop = False
        self.step = 0
        self._build_optimizer(objective)
        if resume is not None:
            state = load_checkpoint(resume, map_location=self.device)
            changed = sorted(k for k, v in to_dict(self.cfg).items() if state["train_cfg"].get(k) != v)
            if changed:
                log.warning("resuming %s with changed train settings: %s", resume, ", ".join(changed))
            self.load_state_dict(state)
            log.info("resumed from %s at step %d", resume, self.step)
        else:
            seed_everything(self.cfg.seed)
        self._forward = self._wrap(objective)
        first = self._checked = self.step
        self._losses = torch.full((self.cfg.steps,), float("nan"), device=self.device)
        result = FitResult(step=self.step)
        for cb in self.callbacks:
            cb.on_fit_start(self)
        logs: dict[str, Any] = {}
        while self.step < self.cfg.steps and not self._stop:
            logs = self._train_step()
            self.step += 1
            if self.step % self._check_every == 0:
                self.check_finite()
            for cb in self.callbacks:
                cb.on_step_end(self, self.step, logs)
        self.check_finite()
        result.step = self.step
        result.losses = self._losses[first : self.step].tolist()  # one device→host copy for the whole run
        result.last = {k: float(v) for k, v in logs.items()}
        for cb in self.callbacks:
            cb.on_fit_end(self)
        return result

    def check_finite(self) -> None:
        """Raise ``FloatingPointError`` if a loss since the last check was NaN/inf (waits for the device)."""
        assert self._losses is not None
        recent = self._losses[self._checked : self.step]
        bad = (~torch.isfinite(recent)).nonzero()
        if len(bad):
            at = self._checked + int(bad[0, 0])
            raise FloatingPointError(f"loss is {float(recent[int(bad[0, 0])])} at step {at + 1}")
        self._checked = self.step

    def _train_step(self) -> dict[str, Any]:
        assert self._forward is not None and self.optimizer is not None and self.scheduler is not None
        assert self.source is not None and self._losses is not None
        start = time.perf_counter()
        batch = {
            k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v
            for k, v in self.source.next_batch().items()
        }
        amp = self.cfg.amp_dtype is not None
        dtype = AMP_DTYPES[self.cfg.amp_dtype] if amp else None  # type: ignore[index]
        with torch.autocast(self.device.type, dtype=dtype, enabled=amp):
            out = self._forward(batch)
        losses = [v for k, v in out.items() if k.endswith("_loss")]
        if not losses:
            raise ValueError(f"training_step returned no '*_loss' entry; keys: {', '.join(out) or 'none'}")
        total = torch.stack([v.float() for v in losses]).sum()
        if self._check_every == 1 and not torch.isfinite(total):  # before the update: weights stay clean
            raise FloatingPointError(f"loss is {total.item()} at step {self.step + 1}")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = None
        if self.cfg.grad_clip is not None:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            grad_norm = nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        # every scalar as a 0-d tensor, averaged over ranks in one collective; no host sync here
        names = ["loss", *(k for k, v in out.items() if v.numel() == 1)]
        values = torch.stack([total.detach(), *(out[k].detach().float().reshape(()) for k in names[1:])])
        values = all_reduce_mean(values, self.dist)
        self._losses[self.step] = values[0]
        logs: dict[str, Any] = dict(zip(names, values.unbind(), strict=True)) | {"lr": lr}
        if grad_norm is not None:
            logs["grad_norm"] = grad_norm.detach()
        logs["step_s"] = time.perf_counter() - start  # host time; on a GPU, the time to enqueue the step
        return logs
