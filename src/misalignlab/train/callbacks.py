"""Standard trainer callbacks: JSON-lines log, rich progress bar, checkpoints, evaluation, early stop.

Callbacks run in list order after each step and may add entries to that step's ``logs`` dict, so put
:class:`EvalEvery` before :class:`JsonlLog` to have evaluation results logged with the step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from torch import nn

from misalignlab.runs import RunDir
from misalignlab.train.checkpoint import CHECKPOINT_DIR, save_checkpoint
from misalignlab.train.settings import ramp_fraction
from misalignlab.train.trainer import Callback, Trainer

log = logging.getLogger(__name__)


class JsonlLog(Callback):
    """Append ``{"stage": "train", "step": …, **logs}`` to the run's ``results.jsonl`` every ``every`` steps."""

    main_only = True

    def __init__(self, run_dir: RunDir, every: int = 1, stage: str = "train") -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.run_dir = run_dir
        self.every = every
        self.stage = stage

    def on_step_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None:
        if step % self.every == 0 or step == trainer.cfg.steps:
            self.run_dir.log({"stage": self.stage, "step": step, **logs})


class RichProgress(Callback):
    """A rich progress bar showing the step, the loss and the learning rate."""

    main_only = True

    def __init__(self, description: str = "train", refresh_every: int = 10) -> None:
        self.description = description
        self.refresh_every = refresh_every
        self._progress = None
        self._task = None

    def on_fit_start(self, trainer: Trainer) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=trainer.cfg.steps, completed=trainer.step, info="")

    def on_step_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None:
        if self._progress is None or self._task is None:
            return
        if step % self.refresh_every == 0 or step == trainer.cfg.steps:
            info = f"loss {logs['loss']:.4f}  lr {logs['lr']:.2e}"
            self._progress.update(self._task, completed=step, info=info)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=trainer.step)
            self._progress.stop()
            self._progress = None


class Checkpoint(Callback):
    """Save ``trainer.state_dict()`` to ``<run>/checkpoints/step_XXXXXXXX.pt`` every ``every`` steps and at the end.

    Files are written atomically; only the newest ``keep`` are kept. Resume with
    ``Trainer.fit(..., resume=latest_checkpoint(run_root))``. Rank 0 writes; every rank resumes
    from the same file. The losses are checked for NaN/inf first, so no checkpoint holds a diverged run.
    """

    main_only = True

    def __init__(self, run_dir: RunDir | Path, every: int, keep: int = 2) -> None:
        if every < 1 or keep < 1:
            raise ValueError(f"every and keep must be >= 1, got {every}, {keep}")
        root = run_dir.root if isinstance(run_dir, RunDir) else Path(run_dir)
        self.folder = root / CHECKPOINT_DIR
        self.every = every
        self.keep = keep
        self._saved_step = -1

    def path_for(self, step: int) -> Path:
        return self.folder / f"step_{step:08d}.pt"

    def save(self, trainer: Trainer) -> Path:
        trainer.check_finite()
        path = self.path_for(trainer.step)
        save_checkpoint(path, trainer.state_dict())
        self._saved_step = trainer.step
        for old in sorted(self.folder.glob("step_*.pt"))[: -self.keep]:
            old.unlink(missing_ok=True)
        log.info("saved checkpoint %s", path)
        return path

    def on_fit_start(self, trainer: Trainer) -> None:
        self._saved_step = trainer.step  # a resumed run does not rewrite the checkpoint it came from

    def on_step_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None:
        if step % self.every == 0:
            self.save(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.step != self._saved_step:
            self.save(trainer)


class EvalEvery(Callback):
    """Every ``every`` steps (and at the last), add ``fn(objective)``'s metrics to the step's logs.

    Rank 0 only: the metrics feed logs, which only rank 0 writes.
    """

    main_only = True

    def __init__(self, every: int, fn: Callable[[nn.Module], Mapping[str, float]]) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self.fn = fn

    def on_step_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None:
        if step % self.every == 0 or step == trainer.cfg.steps:
            objective = trainer.objective
            assert objective is not None
            was_training = objective.training
            objective.eval()
            try:
                logs.update({k: float(v) for k, v in self.fn(objective).items()})
            finally:
                objective.train(was_training)


class StopAfter(Callback):
    """End training after ``step`` steps without changing the schedule (simulates an interruption)."""

    def __init__(self, step: int) -> None:
        self.at = step

    def on_step_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None:
        if step >= self.at:
            trainer.stop()


class SetByStep(Callback):
    """Sets something on the trainer from the step count: at fit start (so a resumed run gets the
    value of its restored step) and after every step. Subclasses say what in ``_set``."""

    def _set(self, trainer: Trainer, step: int) -> None:
        raise NotImplementedError

    def on_fit_start(self, trainer: Trainer) -> None:
        self._set(trainer, trainer.step)

    def on_step_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None:
        self._set(trainer, step)


class AlignWeightRamp(SetByStep):
    """Switch on the loss's explicit alignment term late: α = 0 until fraction ``start`` of the steps,
    then linear to ``final`` at fraction ``end``, then held (every rank, so gradients agree).

    Why late: pulling each image code onto its caption's removes what the captions do not state
    (nuisances the saturated cross entropy no longer pushes out), but applied from the first step
    it also flattens hard stated factors before the encoders have separated them. On resume the
    weight is set from the restored step.
    """

    def __init__(self, final: float, start: float, end: float) -> None:
        if not (final >= 0 and 0.0 <= start < end <= 1.0):
            raise ValueError(f"align ramp needs final >= 0 and 0 <= start < end <= 1, got {final}, {start}, {end}")
        self.final, self.start, self.end = final, start, end

    def weight_at(self, step: int, steps: int) -> float:
        return self.final * ramp_fraction(step / max(1, steps), self.start, self.end)

    def _set(self, trainer: Trainer, step: int) -> None:
        loss = trainer.objective.loss  # type: ignore[union-attr]
        if not hasattr(loss, "align_weight"):
            raise ValueError(f"{type(loss).__name__} has no alignment term to ramp")
        loss.align_weight = self.weight_at(step, trainer.cfg.steps)


class SpareFade(SetByStep):
    """Fade the model's code dimensions beyond ``keep`` out: factor 1 until fraction ``start`` of
    the steps, linear to 0 at ``end``, after which the code has ``keep`` dimensions.

    Why: spare dimensions give a small code room to separate its stated factors early, but left in
    place they keep what the captions do not state (an omitted defect, a perturbed size). Fading
    them out keeps the early speed and ends at ``keep`` dimensions. On resume the factor is set
    from the restored step.
    """

    def __init__(self, keep: int, start: float, end: float) -> None:
        if not (keep >= 1 and 0.0 <= start < end <= 1.0):
            raise ValueError(f"spare fade needs keep >= 1 and 0 <= start < end <= 1, got {keep}, {start}, {end}")
        self.keep, self.start, self.end = keep, start, end

    def scale_at(self, step: int, steps: int) -> float:
        return 1.0 - ramp_fraction(step / max(1, steps), self.start, self.end)

    def _set(self, trainer: Trainer, step: int) -> None:
        model = trainer.objective.model  # type: ignore[union-attr]
        model.spare_from, model.spare_scale = self.keep, self.scale_at(step, trainer.cfg.steps)
