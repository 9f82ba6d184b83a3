"""A model-agnostic trainer (minGPT style), extended by callbacks.

The trainer knows nothing about images, captions or misalignment. It repeatedly takes a batch
from a *source*, calls ``objective.training_step(batch)``, sums the returned entries whose key ends
in ``_loss``, and steps an Adam/AdamW optimizer with optional gradient clipping and a
warmup/cosine schedule. Everything else (logging, progress, checkpoints, evaluation) is a
:class:`Callback` (the standard ones live in :mod:`misalignlab.train.callbacks`).

Determinism: :func:`seed_everything` seeds python, numpy and torch; a checkpoint holds the
objective, optimizer, scheduler, the source's position and every RNG state as plain tensors and
numbers, so ``torch.load(..., weights_only=True)`` reads it and a resumed run continues with the
same numbers as an uninterrupted one.
"""

from __future__ import annotations

import io
import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from misalignlab.config import to_dict
from misalignlab.runs import atomic_write_bytes

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine")
AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
CHECKPOINT_FORMAT = "misalignlab.checkpoint/1"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_KEYS = ("format", "step", "objective", "optimizer", "scheduler", "source", "rng", "train_cfg")


@dataclass(frozen=True)
class TrainCfg:
    """Optimisation settings. ``steps`` is required: there is no endless default.

    ``schedule`` "cosine" decays the learning rate to 0 after ``warmup_steps`` of linear warmup;
    "constant" keeps it after warmup. ``batch_size`` is read by whoever builds the batch source.
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


class Objective(Protocol):
    """What the trainer optimises: an ``nn.Module`` whose ``training_step`` returns named tensors."""

    def training_step(self, batch: Mapping[str, Tensor]) -> Mapping[str, Tensor]: ...


class BatchSource(Protocol):
    """An endless, seeded batch stream whose position can be saved and restored."""

    def next_batch(self) -> dict[str, Tensor]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class Callback:
    """Hooks called by :class:`Trainer`; subclasses override what they need."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None:
        pass

    def on_fit_end(self, trainer: Trainer) -> None:
        pass


@dataclass
class FitResult:
    """What one ``fit`` call did: the final step, its per-step total losses and the last logs."""

    step: int
    losses: list[float] = field(default_factory=list)
    last: dict[str, float] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every global RNG state as tensors and plain numbers (safe for ``weights_only`` loading)."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }  # fmt: skip


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_s = state["numpy"]
    keys = np_s["keys"].numpy().astype(np.uint32)
    np.random.set_state((np_s["name"], keys, np_s["pos"], np_s["has_gauss"], np_s["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss_next"]))


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read back (truncated, corrupted or not ours)."""


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` atomically: serialise in memory, write a temp file, then ``os.replace``."""
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; unreadable files raise :class:`CheckpointError`."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # torch raises many types for a damaged zip/pickle stream
        raise CheckpointError(
            f"checkpoint {path} is corrupted or unreadable ({type(err).__name__}: {str(err)[:200]}); "
            "delete it to resume from an earlier checkpoint"
        ) from err
    missing = sorted(set(CHECKPOINT_KEYS) - set(state)) if isinstance(state, dict) else list(CHECKPOINT_KEYS)
    if missing or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (missing: {', '.join(missing)})")
    return state


def latest_checkpoint(root: Path) -> Path | None:
    """The highest-step ``checkpoints/step_*.pt`` under run folder ``root``, or None."""
    found = sorted(Path(root, CHECKPOINT_DIR).glob("step_*.pt"))
    return found[-1] if found else None


def lr_factor(step: int, cfg: TrainCfg) -> float:
    """Multiplier of ``cfg.lr`` for optimizer step ``step`` (0-based): linear warmup, then constant/cosine.

    Reads only ``steps``, ``warmup_steps`` and ``schedule``, so the batched simulation trainer
    (:class:`misalignlab.train.numeric.NumericTrainCfg`) shares it."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class Trainer:
    """Runs ``cfg.steps`` optimisation steps of an objective on a batch source.

    Callbacks run in list order after every step; one may call :meth:`stop` to end early. The
    objective, optimizer, scheduler and source are attributes during ``fit`` so callbacks can read
    them (``trainer.state_dict()`` is what a checkpoint holds).
    """

    def __init__(self, cfg: TrainCfg, callbacks: Sequence[Callback] = ()) -> None:
        self.cfg = cfg
        self.callbacks = list(callbacks)
        self.device = torch.device(cfg.device)
        self.step = 0
        self.objective: nn.Module | None = None
        self.source: BatchSource | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self._stop = False

    def stop(self) -> None:
        """Ask the loop to end after the current step's callbacks."""
        self._stop = True

    def _build_optimizer(self, objective: nn.Module) -> None:
        params = [p for p in objective.parameters() if p.requires_grad]
        opt_cls = torch.optim.AdamW if self.cfg.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt_cls(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        cfg = self.cfg
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, cfg))

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
        result = FitResult(step=self.step)
        for cb in self.callbacks:
            cb.on_fit_start(self)
        while self.step < self.cfg.steps and not self._stop:
            logs = self._train_step()
            self.step += 1
            result.losses.append(logs["loss"])
            for cb in self.callbacks:
                cb.on_step_end(self, self.step, logs)
            result.last = logs
        result.step = self.step
        for cb in self.callbacks:
            cb.on_fit_end(self)
        return result

    def _train_step(self) -> dict[str, float]:
        assert self.objective is not None and self.optimizer is not None and self.scheduler is not None
        assert self.source is not None
        start = time.perf_counter()
        batch = {k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v
                 for k, v in self.source.next_batch().items()}  # fmt: skip
        amp = self.cfg.amp_dtype is not None
        dtype = AMP_DTYPES[self.cfg.amp_dtype] if amp else None  # type: ignore[index]
        with torch.autocast(self.device.type, dtype=dtype, enabled=amp):
            out = self.objective.training_step(batch)  # type: ignore[operator]
        losses = [v for k, v in out.items() if k.endswith("_loss")]
        if not losses:
            raise ValueError(f"training_step returned no '*_loss' entry; keys: {', '.join(out) or 'none'}")
        total = torch.stack([v.float() for v in losses]).sum()
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss is {total.item()} at step {self.step + 1}")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        logs = {"loss": total.item(), "lr": self.optimizer.param_groups[0]["lr"]}
        if self.cfg.grad_clip is not None:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            logs["grad_norm"] = float(nn.utils.clip_grad_norm_(params, self.cfg.grad_clip))
        self.optimizer.step()
        self.scheduler.step()
        logs |= {k: float(v.detach()) for k, v in out.items() if v.numel() == 1}
        logs["step_s"] = time.perf_counter() - start
        return logs
