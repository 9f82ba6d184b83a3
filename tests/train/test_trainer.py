"""The model-agnostic trainer: determinism, exact resume, checkpoint safety, callbacks, weights."""

import json
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from misalignlab.config import from_dict, to_dict
from misalignlab.runs import RunDir, read_jsonl
from misalignlab.train.callbacks import Checkpoint, EvalEvery, JsonlLog, RichProgress, StopAfter
from misalignlab.train.trainer import (
    CheckpointError,
    FitResult,
    TrainCfg,
    Trainer,
    latest_checkpoint,
    load_checkpoint,
    lr_factor,
)


class Regression(nn.Module):
    """A small MLP with dropout (uses the global torch RNG) fitting y = sum(x); optional per-row weights."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        err = (self.net(batch["x"]).squeeze(-1) - batch["y"]) ** 2
        return {"mse_loss": err.mean(), "l2_loss": 1e-3 * self.net[0].weight.square().sum(), "first": err[0]}


class RandomSource:
    """Draws fresh random batches from its own generator; the generator state is the position."""

    def __init__(self, seed: int, batch: int = 8) -> None:
        self.gen = torch.Generator().manual_seed(seed)
        self.batch = batch

    def next_batch(self) -> dict[str, Tensor]:
        x = torch.randn(self.batch, 4, generator=self.gen)
        return {"x": x, "y": x.sum(-1)}

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])


CFG = TrainCfg(steps=12, lr=1e-2, schedule="cosine", warmup_steps=3, grad_clip=1.0, seed=3)


def fit(cfg: TrainCfg = CFG, callbacks=(), resume=None, init_seed: int = 0) -> tuple[Regression, FitResult]:
    torch.manual_seed(init_seed)
    model = Regression()
    return model, Trainer(cfg, callbacks).fit(model, RandomSource(seed=cfg.seed), resume=resume)


def test_same_seed_same_loss_curve_and_different_seed_differs() -> None:
    _, a = fit()
    _, b = fit()
    _, c = fit(TrainCfg(**{**to_dict(CFG), "seed": 4}))
    assert len(a.losses) == 12 and a.step == 12
    assert a.losses == b.losses
    assert a.losses != c.losses


def test_resume_from_checkpoint_matches_uninterrupted_run(tmp_path) -> None:
    full_model, full = fit()
    _, first = fit(callbacks=[Checkpoint(tmp_path, every=5), StopAfter(5)])
    assert first.step == 5
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.name == "step_00000005.pt"
    resumed_model, rest = fit(resume=ckpt, init_seed=99)  # different init: must be overwritten
    assert rest.step == 12
    assert first.losses + rest.losses == full.losses
    for (name, p), q in zip(full_model.state_dict().items(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_checkpoints_are_atomic_and_pruned(tmp_path) -> None:
    fit(callbacks=[Checkpoint(RunDir(tmp_path, {}), every=2, keep=2)])
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step_00000010.pt", "step_00000012.pt"]  # no temp files, older ones pruned
    state = load_checkpoint(tmp_path / "checkpoints" / "step_00000012.pt")
    assert state["step"] == 12 and from_dict(TrainCfg, state["train_cfg"]) == CFG


def test_corrupted_checkpoint_gives_a_clear_error(tmp_path) -> None:
    fit(callbacks=[Checkpoint(tmp_path, every=6)])
    path = latest_checkpoint(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"step_00000012\.pt is corrupted"):
        fit(resume=path)
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)
    torch.save({"step": 3}, path)
    with pytest.raises(CheckpointError, match="not a misalignlab.checkpoint"):
        load_checkpoint(path)


def test_losses_are_summed_and_metrics_logged(tmp_path) -> None:
    run = RunDir(tmp_path, {"train": to_dict(CFG)})
    evals = EvalEvery(4, lambda obj: {"eval/training_mode": float(obj.training)})
    _, result = fit(callbacks=[evals, JsonlLog(run, every=4), RichProgress()])
    rows = read_jsonl(run.results_path)
    assert [r["step"] for r in rows] == [4, 8, 12]
    last = rows[-1]
    assert last["loss"] == pytest.approx(last["mse_loss"] + last["l2_loss"])
    assert "first" in last and last["eval/training_mode"] == 0.0  # evaluation runs in eval mode
    assert result.last["loss"] == last["loss"]
    json.dumps(rows)


def test_lr_schedule_warmup_then_cosine() -> None:
    cfg = TrainCfg(steps=10, warmup_steps=2, schedule="cosine")
    factors = [lr_factor(s, cfg) for s in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert all(a >= b for a, b in zip(factors[2:], factors[3:]))
    assert factors[-1] == pytest.approx(0.5 * (1 + torch.cos(torch.tensor(torch.pi * 7 / 8)).item()))
    assert lr_factor(5, TrainCfg(steps=10)) == 1.0


class PerRow(nn.Module):
    """One free parameter per row; the loss is a weighted mean of per-row errors."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(6))

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        err = (self.table[batch["idx"]] - 1.0) ** 2
        w = batch["weight"]
        return {"fit_loss": (err * w).sum() / w.sum()}


class AllRows:
    def next_batch(self) -> dict[str, Tensor]:
        return {"idx": torch.arange(6), "weight": torch.tensor([1.0, 0.0, 1.0, 0.0, 2.0, 1.0])}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def test_zero_weight_rows_get_no_gradient() -> None:
    model = PerRow()
    Trainer(TrainCfg(steps=5, lr=0.1, grad_clip=None)).fit(model, AllRows())
    moved = model.table.detach() != 0
    assert moved.tolist() == [True, False, True, False, True, True]


def test_bad_configs_and_objectives_raise() -> None:
    with pytest.raises(TypeError):
        TrainCfg()  # type: ignore[call-arg]  # steps is required
    with pytest.raises(ValueError, match="valid: adam, adamw"):
        TrainCfg(steps=1, optimizer="sgd")
    with pytest.raises(ValueError, match="valid: None, bfloat16"):
        TrainCfg(steps=1, amp_dtype="int8")
    with pytest.raises(ValueError, match="unknown config key"):
        from_dict(TrainCfg, {"steps": 1, "learning_rate": 0.1})

    class NoLoss(Regression):
        def training_step(self, batch):
            return {"mse": super().training_step(batch)["mse_loss"]}

    with pytest.raises(ValueError, match="no '\\*_loss' entry; keys: mse"):
        Trainer(TrainCfg(steps=1)).fit(NoLoss(), RandomSource(0))


def test_bfloat16_autocast_and_adamw_run() -> None:
    _, result = fit(TrainCfg(steps=3, amp_dtype="bfloat16", optimizer="adamw", weight_decay=0.1))
    assert result.step == 3 and all(torch.isfinite(torch.tensor(result.losses)))
