"""The simulation lab workflow: presets of bias settings, one batched sweep, probes, tables, plots.

``run_sweep`` trains every (setting × seed) model of a preset at once, evaluates R² of each latent
from both codes with every probe, optionally the downstream tasks, and writes to the run folder:
``config.json``, ``argv.txt``, ``results.jsonl`` (loss log and every metric row), ``r2.csv`` (long),
``r2_table.csv`` (settings × targets, seed mean), ``downstream.csv``, ``heatmap.png``, ``loss.png``,
and ``checkpoint.pt`` (resumable training state).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from misalignlab.config import check_scale, to_dict
from misalignlab.evaluate.identifiability import evaluate_stack
from misalignlab.evaluate.probes import PROBES
from misalignlab.evaluate.sim_tasks import DownstreamCfg, downstream_metrics
from misalignlab.lvm.bias import BiasSpec
from misalignlab.lvm.generators import GeneratorCfg
from misalignlab.lvm.model import LVMCfg
from misalignlab.models.sim_stack import Setting, SimEncoderCfg, SimStack
from misalignlab.registry import Registry
from misalignlab.report.heatmap import loss_plot, r2_heatmap
from misalignlab.runs import RunDir, atomic_write_text
from misalignlab.train.sim import SimTrainCfg, train_stack

log = logging.getLogger(__name__)

PRESETS: Registry[Callable[[], list[tuple[str, BiasSpec]]]] = Registry("sweep preset")


def _prefix(k: int) -> tuple[int, ...]:
    return tuple(range(k))


def _label(k: int) -> str:
    return "{1}" if k == 1 else f"[{k}]"


@PRESETS.register("paper-selection")
def selection_settings() -> list[tuple[str, BiasSpec]]:
    """I_θ = [10], [9], …, {1}; nothing perturbed."""
    return [(f"I_θ={_label(k)}", BiasSpec(selected=_prefix(k))) for k in range(10, 0, -1)]


@PRESETS.register("paper-perturbation")
def perturbation_settings() -> list[tuple[str, BiasSpec]]:
    """I_θ = [10]; I_ρ = ∅, {1}, [2], …, [9] with p = 0.75 (s10 never perturbed)."""
    out = [("I_ρ=∅", BiasSpec(selected=_prefix(10)))]
    out += [(f"I_ρ={_label(k)}", BiasSpec(selected=_prefix(10), perturbed=_prefix(k))) for k in range(1, 10)]
    return out


@PRESETS.register("paper-joint")
def joint_settings() -> list[tuple[str, BiasSpec]]:
    """I_θ = [8], I_ρ = [2]: both biases at once (paper Table 5)."""
    return [("I_θ=[8] I_ρ=[2]", BiasSpec(selected=_prefix(8), perturbed=_prefix(2)))]


@dataclass(frozen=True)
class SweepCfg:
    preset: str
    scale: str
    lvm: LVMCfg = field(default_factory=LVMCfg)
    encoder: SimEncoderCfg = field(default_factory=SimEncoderCfg)
    train: SimTrainCfg = field(default_factory=lambda: SimTrainCfg(steps=1))
    seeds: int = 1  # models per setting, seeded seed, seed + 1, …
    seed: int = 0
    n_fit: int = 8192
    n_test: int = 4096
    probes: tuple[str, ...] = ("linear", "mlp")
    downstream: bool = True
    threads: int = 0  # 0: torch's default
    checkpoint_every: int = 1000
    bias: BiasSpec | None = None  # preset "custom": one explicit setting (the simulate command)
    eval_every: int = 0  # > 0: also probe (MLP, smaller samples) every N steps → r2_vs_steps.csv

    def __post_init__(self) -> None:
        check_scale(self.scale)
        if self.seeds < 1 or min(self.n_fit, self.n_test) < 2 or self.eval_every < 0 or self.checkpoint_every < 1:
            raise ValueError(
                "seeds >= 1, n_fit and n_test >= 2, eval_every >= 0 and checkpoint_every >= 1 are required"
            )
        for probe in self.probes:
            if PROBES.get(probe).regress is None:  # unknown names list the known ones
                raise ValueError(f"probe {probe!r} cannot regress latents")


# Every scale's settings, as data. ``quick`` is sized for 2 CPU cores; why it converges (RESULTS.md §1.7):
# pre-LayerNorm residual encoders, whitened inputs, Adam 2e-3 with warm-up and cosine decay, and the
# alignment weight λ raised from 1 to 4 between 30 % and 50 % of training. λ > 2/(p·σ²_ε) = 8/3 makes
# keeping a perturbed factor a loss even in a spare code dimension; raising it only once the kept
# factors are learnt avoids the early collapse a large λ causes. Eight spare code dimensions, faded
# out between 20 % and 50 %, let codes of 1–4 dimensions learn their kept factors as fast as wide ones;
# the trained code has exactly |I_θ \ I_ρ| dimensions. ``tiny`` is for smoke tests (a cheaper search for
# well-conditioned generator layers).
SCALE_SETTINGS: dict[str, dict[str, Any]] = {
    "paper": dict(
        encoder=SimEncoderCfg(),
        train=SimTrainCfg(steps=100_000, batch_size=6144, lr=1e-4, log_every=1000),
        seeds=3,
        n_fit=20_480,
        n_test=20_480,
        probes=("linear", "mlp"),
        checkpoint_every=5000,
    ),
    "quick": dict(
        encoder=SimEncoderCfg(hidden=(128,) * 4, arch="resmlp", whiten_inputs=True, code_extra=8),
        train=SimTrainCfg(
            steps=3000,
            batch_size=512,
            lr=2e-3,
            schedule="cosine",
            warmup_steps=150,
            independent_negatives=False,
            log_every=100,
            align_weight_final=4.0,
            align_ramp=(0.3, 0.5),
            spare_fade=(0.2, 0.5),
        ),
    ),
    "tiny": dict(
        lvm=LVMCfg(generator=GeneratorCfg(cond_quantile=0.02, n_reference=2000)),
        encoder=SimEncoderCfg(hidden=(32,) * 2),
        train=SimTrainCfg(
            steps=60, batch_size=128, lr=1e-3, schedule="cosine", independent_negatives=False, log_every=20
        ),
        n_fit=600,
        n_test=600,
        probes=("linear",),
        downstream=False,
        checkpoint_every=20,
    ),
}


def sweep_config(preset: str, scale: str, dependent: bool = False) -> SweepCfg:
    """The configuration of a preset at a scale (:data:`SCALE_SETTINGS`), with dependent latents if asked."""
    if preset != "custom":
        PRESETS.get(preset)
    settings = dict(SCALE_SETTINGS[check_scale(scale)])
    lvm = settings.pop("lvm", LVMCfg())
    lvm = replace(lvm, latent=replace(lvm.latent, dependent=dependent))
    return SweepCfg(preset=preset, scale=scale, lvm=lvm, **settings)


def build_settings(cfg: SweepCfg) -> list[Setting]:
    if cfg.preset == "custom":
        if cfg.bias is None:
            raise ValueError("preset 'custom' needs an explicit bias setting")
        pairs = [(cfg.bias.describe(), cfg.bias)]
    else:
        pairs = PRESETS.get(cfg.preset)()
    for _, b in pairs:
        b.check(cfg.lvm.latent.n_semantic)
    return [
        Setting(bias=replace(b), seed=seed, label=label)
        for label, b in pairs
        for seed in range(cfg.seed, cfg.seed + cfg.seeds)
    ]


def r2_table(rows: pd.DataFrame, probe: str) -> pd.DataFrame:
    """Seed-mean R² as a wide table: one row per (setting, modality), one column per target."""
    sub = rows[rows["probe"] == probe]
    table = sub.pivot_table(index=["setting", "modality"], columns="target", values="r2", sort=False)
    return table[list(dict.fromkeys(sub["target"]))]


def run_sweep(
    cfg: SweepCfg,
    out: Path,
    argv: list[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    resume: bool = True,
) -> dict[str, Path]:
    """Train, probe and write every artefact of a sweep; returns the paths written.

    ``resume``: continue from ``<out>/checkpoint.pt`` if present (refused if the folder's
    ``config.json`` differs from ``cfg``); False deletes it and starts over.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt, saved = Path(out) / "checkpoint.pt", Path(out) / "config.json"
    if not resume:
        ckpt.unlink(missing_ok=True)
    elif ckpt.is_file() and saved.is_file() and json.loads(saved.read_text(encoding="utf-8")) != to_dict(cfg):
        raise ValueError(f"{out} holds a checkpoint of a different config; pass --fresh or choose another --out")
    run = RunDir(out, to_dict(cfg), argv)
    settings = build_settings(cfg)
    stack = SimStack(settings, cfg.lvm, cfg.encoder)
    names = [f"{s.label} seed{s.seed}" for s in settings]

    curve_rows: list[dict] = []

    def on_log(step: int, losses) -> None:
        run.log(
            {
                "stage": "loss",
                "step": step,
                "loss_variant": cfg.train.loss,
                **{f"loss/{n}": float(v) for n, v in zip(names, losses, strict=True)},
            }
        )
        if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.train.steps:
            stack.to("cpu")  # the probes read numpy arrays; training continues on train.device
            for rec in evaluate_stack(stack, cfg.n_fit // 2, cfg.n_test // 2, ("mlp",), seed=step):
                curve_rows.append({"step": step, **rec})
                run.log({"stage": "probe_during_training", "step": step, **rec})
            stack.to(cfg.train.device)
        if progress:
            progress("train", step, cfg.train.steps)

    curve = train_stack(stack, cfg.train, on_log, checkpoint=ckpt, checkpoint_every=cfg.checkpoint_every)
    if progress:
        progress("probe", 0, 1)
    rows = pd.DataFrame(evaluate_stack(stack, cfg.n_fit, cfg.n_test, cfg.probes))
    for rec in rows.to_dict("records"):
        run.log({"stage": "probe", "loss_variant": cfg.train.loss, **rec})
    paths = {"r2_long": run.path("r2.csv")}
    if curve_rows:
        final = rows[rows["probe"] == "mlp"].assign(step=cfg.train.steps)
        paths["r2_vs_steps"] = run.path("r2_vs_steps.csv")
        atomic_write_text(paths["r2_vs_steps"], pd.concat([pd.DataFrame(curve_rows), final]).to_csv(index=False))
    atomic_write_text(paths["r2_long"], rows.to_csv(index=False))
    nonlinear = next((p for p in cfg.probes if p != "linear"), cfg.probes[0])
    for probe in cfg.probes:
        paths[f"table_{probe}"] = run.path(f"r2_table_{probe}.csv")
        atomic_write_text(paths[f"table_{probe}"], r2_table(rows, probe).round(4).to_csv())
    mean = rows[rows["probe"] == nonlinear].groupby(["setting", "modality", "target"], sort=False)["r2"].mean()
    paths["heatmap"] = r2_heatmap(mean.reset_index(), run.path("heatmap.png"), f"{cfg.preset} ({nonlinear})")
    curves = pd.DataFrame(curve, columns=names)
    paths["loss_plot"] = loss_plot(curves.rolling(50, min_periods=1).mean(), run.path("loss.png"), cfg.preset)
    if cfg.downstream:
        if progress:
            progress("downstream", 0, 1)
        down = pd.DataFrame(downstream_metrics(stack, cfg.n_test, DownstreamCfg()))
        for rec in down.to_dict("records"):
            run.log({"stage": "downstream", **rec})
        paths["downstream"] = run.path("downstream.csv")
        atomic_write_text(paths["downstream"], down.round(4).to_csv(index=False))
    return paths
